# SPDX-License-Identifier: GPL-2.0-only
"""Isolation of vmmsd's workers, shown rather than assumed.

From outside: a running worker has its VM's own uid/gid, no capability in any set (bounding
and ambient included), no_new_privs, seccomp filter mode, its own mount/pid/ipc/uts/net
namespaces, an empty read-only root (the worker is static and maps its definition without
the schema: no file of the host is visible to it), only the descriptors vmmsd handed it, and
its cgroup limits.
From inside: a static probe started through the same sandbox code (the test_sandbox unit
binary with VMMS_SANDBOX_PROBE) tries to open host files, signal host processes, become
root, mount, chroot and reach the network; every attempt must fail.
A worker crashed on purpose (a real SIGSEGV) affects no other VM.
Needs root and /dev/kvm. Run: VMMS_BUILD=build python3 -m pytest tests/e2e/test_isolation.py"""
import json
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from vmmsd_util import (CS_EVENTS, OFF, ROOT, RUNNING, build_dir, cpu_ticks, cs, define, guest_elf, guest_xml,
                        proc_status, request_state, spin_vmmsd, wait_job, wait_state)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.access("/dev/kvm", os.R_OK | os.W_OK),
                                reason="needs root and /dev/kvm")

MEM_MIB = 48


@pytest.fixture
def daemon(tmp_path):
    yield from spin_vmmsd(tmp_path)


def start(d, c, name, vcpus=1):
    define(c, guest_xml(name, guest_elf("spin"), memory_mib=MEM_MIB, vcpus=vcpus))
    job = wait_job(c, request_state(c, name, RUNNING)["result"]["Job"])
    assert job["JobState"] == 7, job
    wait_state(c, name, RUNNING)
    return d.worker_pid(name)


def elf_has_interp(path):
    """Whether the 64-bit little-endian ELF at path asks for a dynamic loader (PT_INTERP)."""
    data = pathlib.Path(path).read_bytes()
    assert data[:4] == b"\x7fELF" and data[4] == 2, path
    phoff = int.from_bytes(data[32:40], "little")
    phentsize = int.from_bytes(data[54:56], "little")
    phnum = int.from_bytes(data[56:58], "little")
    return any(int.from_bytes(data[phoff + i * phentsize:phoff + i * phentsize + 4], "little") == 3
               for i in range(phnum))


def cgroup_dirs(pid):
    """controller -> directory of pid's group (v1 hierarchies, or "" -> the v2 group)."""
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, ctrls, path = line.split(":", 2)
        for ctl in (ctrls.split(",") if ctrls else [""]):
            base = "/sys/fs/cgroup/unified" if ctl == "" and os.path.exists("/sys/fs/cgroup/unified") else \
                "/sys/fs/cgroup" + (f"/{ctl}" if ctl else "")
            out[ctl] = base + path
    return out


def test_worker_credentials_namespaces_root_fds_cgroup(daemon):
    c = daemon.client()
    pid = start(daemon, c, "iso1", vcpus=1)
    st = proc_status(pid)
    uid = json.loads((daemon.state / "vms/iso1/vm.json").read_text())["uid"]
    assert 200000 <= uid <= 200999
    assert st["Uid"].split() == [str(uid)] * 4 and st["Gid"].split() == [str(uid)] * 4
    assert st["Groups"] == ""
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[k], 16) == 0, (k, st[k])
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"
    # Its own namespaces (the user and cgroup namespaces are shared on purpose).
    for ns in ("mnt", "pid", "ipc", "uts", "net"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/{daemon.proc.pid}/ns/{ns}"), ns
    # The root is empty, read-only, and a tmpfs of its own (not a host directory).
    root = pathlib.Path(f"/proc/{pid}/root")
    assert os.listdir(root) == [], os.listdir(root)
    for host_path in ("etc/passwd", "tmp", "proc/1", "dev/kvm", "root", "home", "var", "usr", "lib64",
                      str(daemon.dir)[1:]):
        assert not (root / host_path).exists(), host_path
    with pytest.raises(OSError):
        (root / "written-by-test").write_text("x")   # read-only
    mounts = pathlib.Path(f"/proc/{pid}/mounts").read_text().splitlines()
    assert [m.split()[:3] for m in mounts] == [["vmms-root", "/", "tmpfs"]], mounts
    # ... which works because the worker is static: no PT_INTERP (loader) in its program headers.
    assert not elf_has_interp(build_dir() / "vmms-worker")
    # Only what vmmsd handed over (plus what the worker made of it).
    allowed = {"/dev/null", "/dev/kvm", str(guest_elf("spin")), str(daemon.run / "vms/iso1/worker.log")}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        t = os.readlink(f"/proc/{pid}/fd/{fd}")
        assert t in allowed or t.startswith(("socket:", "anon_inode:", "/memfd:")), (fd, t)
    # cgroup limits from the definition.
    dirs = cgroup_dirs(pid)
    want_mem = (MEM_MIB << 20) + (64 << 20)
    if os.path.exists(dirs.get("memory", "") + "/memory.limit_in_bytes"):
        assert int(open(dirs["memory"] + "/memory.limit_in_bytes").read()) == want_mem
        assert int(open(dirs["cpu"] + "/cpu.cfs_quota_us").read()) == 100000
        assert int(open(dirs["cpu"] + "/cpu.shares").read()) == 1024
        assert int(open(dirs["pids"] + "/pids.max").read()) == 64 + 2
    elif os.path.exists(dirs[""] + "/memory.max"):
        assert int(open(dirs[""] + "/memory.max").read()) == want_mem
    else:
        pytest.fail(f"no memory cgroup for the worker: {dirs}")
    # A second VM gets another uid and other namespaces.
    pid2 = start(daemon, c, "iso2")
    assert proc_status(pid2)["Uid"].split()[0] != str(uid)
    assert os.readlink(f"/proc/{pid2}/ns/pid") != os.readlink(f"/proc/{pid}/ns/pid")
    c.close()


def test_probe_inside_the_sandbox_cannot_escape(tmp_path):
    unit = build_dir() / "san/tests/unit/parent/test_sandbox"
    if not unit.exists():
        pytest.fail(f"{unit} missing: make BUILD={build_dir()} {unit}")
    cc = shutil.which("cc") or shutil.which("gcc")
    probe = tmp_path / "probe"
    subprocess.run([cc, "-static", "-O2", "-o", str(probe), str(ROOT / "tests/e2e/sandbox_probe.c")], check=True)
    p = subprocess.run([str(unit)], env=dict(os.environ, VMMS_SANDBOX_PROBE=str(probe)), capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout + p.stderr   # cmocka prints its summary on stderr
    assert "[  PASSED  ] 6 test(s)." in out and "SKIPPED" not in out, out
    for attempt in ("open_etc_passwd", "open_proc", "open_dev_kvm", "create_file", "kill_host_pid", "kill_all",
                    "setuid_0", "setgid_0", "mount_proc", "chroot", "connect_localhost"):
        assert f"{attempt} denied " in out, attempt
    assert "caps eff 0 prm 0 inh 0" in out and "root_entries 0" in out


def test_crashed_worker_affects_no_other_vm(daemon):
    gdb = shutil.which("gdb")
    if not gdb:
        pytest.fail("gdb is needed to crash a worker for real (a signal from outside cannot: "
                    "a pid namespace's init ignores signals it has no handler for); .ci/install-deps installs it")
    c = daemon.client()
    victim = start(daemon, c, "crashme")
    other = start(daemon, c, "bystander")
    watcher = daemon.client()
    watcher.result("Subscribe", Query=CS_EVENTS)
    # A genuine SIGSEGV: point the worker's main thread at address 0 and let it run.
    subprocess.run([gdb, "-p", str(victim), "-batch", "-nx", "-ex", "set var $pc=0", "-ex", "detach"],
                   capture_output=True, timeout=60)
    vm = wait_state(c, "crashme", OFF, timeout=20)
    assert vm["HealthState"] in (20, 25) and "signal 11" in vm["ErrorDescription"], vm
    t0 = cpu_ticks(other)
    time.sleep(0.5)
    assert cpu_ticks(other) > t0
    b = cs(c, "bystander")
    assert b["EnabledState"] == RUNNING and b["ProcessID"] == other and b["HealthState"] == 5
    # No event ever named the bystander.
    deadline = time.time() + 1
    while time.time() < deadline:
        ev = watcher.next_event(timeout=0.3)
        if ev is None:
            break
        assert ev["TargetInstance"]["ElementName"] == "crashme", ev
    request_state(c, "bystander", OFF)
    wait_state(c, "bystander", OFF)
    c.close()
    watcher.close()
