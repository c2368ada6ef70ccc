# SPDX-License-Identifier: GPL-2.0-only
"""vmmsd with real, sandboxed workers running ring-3 test guests (tests/guests/spin.c prints
forever): start, pause, resume, reset and turn off through virtctl and raw JSON-RPC, events
in order, a worker killed under vmmsd, vmmsd killed with SIGKILL and restarted under running
guests, a start whose kernel is missing, and many clients at once.
Needs root and /dev/kvm. Run: VMMS_BUILD=build python3 -m pytest tests/e2e/test_vmmsd_lifecycle.py"""
import os
import re
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from vmmsd_util import (CS_EVENTS, OFF, PAUSED, PAUSING, RESUMING, RUNNING, STARTING, STOPPING,
                        build_dir, cpu_ticks, cs, define, guest_elf, guest_xml, request_state, spin_vmmsd,
                        wait_job, wait_state)

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.access("/dev/kvm", os.R_OK | os.W_OK),
                                reason="needs root and /dev/kvm")


@pytest.fixture
def daemon(tmp_path):
    yield from spin_vmmsd(tmp_path)


def console_lines(d, name):
    p = d.state / "vms" / name / "console.log"
    return p.read_text(errors="replace").count("spin ") if p.exists() else 0


def states_of(events, name):
    return [e["TargetInstance"]["EnabledState"] for e in events if e["TargetInstance"]["ElementName"] == name]


def test_lifecycle_raw_json_and_events_in_order(daemon):
    c = daemon.client()
    define(c, guest_xml("spin1", guest_elf("spin")))
    watcher = daemon.client()
    watcher.result("Subscribe", Query=CS_EVENTS)

    r = request_state(c, "spin1", RUNNING)["result"]
    assert r["ReturnValue"] == 4096 and r["Job"].startswith("Msvm_ConcreteJob.")
    job = wait_job(c, r["Job"])
    assert job["JobState"] == 7 and job["ErrorCode"] == 0, job
    vm = wait_state(c, "spin1", RUNNING)
    pid = daemon.worker_pid("spin1")
    assert vm["ProcessID"] == pid and vm["HealthState"] == 5
    time.sleep(0.3)
    assert cs(c, "spin1")["OnTimeInMilliseconds"] >= 200
    # The guest prints through the console multiplexer into the VM's log.
    end = time.time() + 10
    while console_lines(daemon, "spin1") < 2 and time.time() < end:
        time.sleep(0.05)
    assert console_lines(daemon, "spin1") >= 2

    # Invalid transitions are refused with a clear error and change nothing.
    e = request_state(c, "spin1", RUNNING)["error"]
    assert e["data"]["name"] == "InvalidStateTransition", e

    assert request_state(c, "spin1", PAUSED)["result"]["ReturnValue"] == 0
    wait_state(c, "spin1", PAUSED)
    t0 = cpu_ticks(pid)
    n0 = console_lines(daemon, "spin1")
    time.sleep(0.5)
    assert console_lines(daemon, "spin1") == n0, "a paused guest printed"
    assert cpu_ticks(pid) - t0 <= 5, "a paused worker burns CPU"
    assert request_state(c, "spin1", RUNNING)["result"]["ReturnValue"] == 0
    wait_state(c, "spin1", RUNNING)

    r = request_state(c, "spin1", 11)["result"]
    assert r["ReturnValue"] == 4096
    assert wait_job(c, r["Job"])["JobState"] == 7
    assert cs(c, "spin1")["EnabledState"] == RUNNING and daemon.worker_pid("spin1") == pid

    assert request_state(c, "spin1", OFF)["result"]["ReturnValue"] == 0
    vm = wait_state(c, "spin1", OFF)
    assert vm["ProcessID"] is None and vm["HealthState"] == 5 and vm["ErrorDescription"] is None
    assert not os.path.exists(f"/proc/{pid}")
    e = request_state(c, "spin1", PAUSED)["error"]
    assert e["data"]["name"] == "InvalidStateTransition"

    # Every change arrived, in order, with the transitional states (the reset reports
    # Running again).
    want = [STARTING, RUNNING, PAUSING, PAUSED, RESUMING, RUNNING, RUNNING, STOPPING, OFF]
    seen = []
    while len(seen) < len(want):
        ev = watcher.next_event(timeout=10)
        assert ev is not None, seen
        assert ev["TargetInstance"]["ElementName"] == "spin1"
        seen.append(ev["TargetInstance"]["EnabledState"])
    assert seen == want
    c.close()
    watcher.close()


def test_virtctl_lifecycle(daemon, tmp_path):
    x = tmp_path / "v.xml"
    x.write_text(guest_xml("vc1", guest_elf("spin")))
    assert daemon.virtctl("define", x).returncode == 0
    p = daemon.virtctl("start", "vc1")
    assert p.returncode == 0, p.stderr
    c = daemon.client()
    wait_state(c, "vc1", RUNNING)
    assert "running" in daemon.virtctl("list").stdout
    for cmd, state in (("pause", PAUSED), ("resume", RUNNING), ("reset", RUNNING), ("stop", OFF)):
        p = daemon.virtctl(cmd, "vc1")
        assert p.returncode == 0, (cmd, p.stdout, p.stderr)
        wait_state(c, "vc1", state)
    p = daemon.virtctl("pause", "vc1")
    assert p.returncode != 0 and "InvalidStateTransition" in p.stderr
    c.close()


def test_missing_kernel_fails_the_job_naming_the_file(daemon):
    c = daemon.client()
    define(c, guest_xml("nokernel", "/nonexistent/kernel.elf"))
    r = request_state(c, "nokernel", RUNNING)["result"]
    assert r["ReturnValue"] == 4096
    job = wait_job(c, r["Job"])
    assert job["JobState"] == 10 and job["ErrorCode"] != 0
    assert "/nonexistent/kernel.elf" in job["ErrorDescription"]
    vm = cs(c, "nokernel")
    assert vm["EnabledState"] == OFF and "/nonexistent/kernel.elf" in vm["ErrorDescription"]
    assert "nokernel" in daemon.virtctl("list").stdout   # still serving


def test_worker_killed_leaves_vm_off_with_reason(daemon):
    c = daemon.client()
    define(c, guest_xml("victim", guest_elf("spin")))
    wait_job(c, request_state(c, "victim", RUNNING)["result"]["Job"])
    wait_state(c, "victim", RUNNING)
    pid = daemon.worker_pid("victim")
    os.kill(pid, signal.SIGKILL)
    vm = wait_state(c, "victim", OFF)
    assert vm["HealthState"] in (20, 25)
    assert "signal 9" in vm["ErrorDescription"] and str(pid) in vm["ErrorDescription"]
    assert vm["ProcessID"] is None
    # It starts again afterwards, with a clean health.
    wait_job(c, request_state(c, "victim", RUNNING)["result"]["Job"])
    vm = wait_state(c, "victim", RUNNING)
    assert vm["HealthState"] == 5
    request_state(c, "victim", OFF)
    wait_state(c, "victim", OFF)


def test_vmmsd_sigkill_and_restart_reattaches(daemon):
    c = daemon.client()
    define(c, guest_xml("survivor", guest_elf("spin")))
    wait_job(c, request_state(c, "survivor", RUNNING)["result"]["Job"])
    wait_state(c, "survivor", RUNNING)
    pid = daemon.worker_pid("survivor")
    c.close()
    daemon.kill9()
    # The worker is not vmmsd's process group or session: it survived.
    t0 = cpu_ticks(pid)
    assert os.getsid(pid) == pid and os.getpgid(pid) == pid
    time.sleep(0.5)
    assert cpu_ticks(pid) > t0, "the guest stopped running without vmmsd"
    daemon.start()
    c = daemon.client()
    vm = wait_state(c, "survivor", RUNNING, timeout=10)
    assert vm["ProcessID"] == pid and daemon.worker_pid("survivor") == pid
    t1 = cpu_ticks(pid)
    time.sleep(0.5)
    assert cpu_ticks(pid) > t1, "the guest does not run after the reattach"
    # Managed again: pause, resume and turn off work, and the end is seen through the pidfd.
    assert request_state(c, "survivor", PAUSED)["result"]["ReturnValue"] == 0
    wait_state(c, "survivor", PAUSED)
    assert request_state(c, "survivor", RUNNING)["result"]["ReturnValue"] == 0
    wait_state(c, "survivor", RUNNING)
    os.kill(pid, signal.SIGKILL)
    vm = wait_state(c, "survivor", OFF)
    assert vm["HealthState"] in (20, 25) and vm["ErrorDescription"]


def spin_numbers(text):
    return [int(m) for m in re.findall(r"spin (\d+)\r?\n", text)]


def test_console_survives_vmmsd_restart(daemon):
    """The serial stream dies with vmmsd; the restarted one hands the reattached worker a new
    one: `virtctl console --read-only` shows fresh output and console.log keeps growing."""
    c = daemon.client()
    define(c, guest_xml("chatty", guest_elf("spin")))
    wait_job(c, request_state(c, "chatty", RUNNING)["result"]["Job"])
    wait_state(c, "chatty", RUNNING)
    pid = daemon.worker_pid("chatty")
    log = daemon.state / "vms" / "chatty" / "console.log"
    end = time.time() + 10
    while console_lines(daemon, "chatty") < 3 and time.time() < end:
        time.sleep(0.05)
    c.close()
    daemon.kill9()
    # Everything the old vmmsd logged, then the guest goes on printing into nothing for a
    # while (dropped by the worker, never blocking the vCPU).
    last_before = max(spin_numbers(log.read_text(errors="replace")))
    t0 = cpu_ticks(pid)
    time.sleep(0.5)
    assert cpu_ticks(pid) > t0, "the guest stopped when its console reader went away"
    assert max(spin_numbers(log.read_text(errors="replace"))) == last_before
    daemon.start()
    c = daemon.client()
    wait_state(c, "chatty", RUNNING, timeout=10)
    assert daemon.worker_pid("chatty") == pid
    reader = subprocess.Popen([str(build_dir() / "virtctl"), "--socket", str(daemon.sock), "console", "chatty",
                               "--read-only"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE)
    out = b""
    try:
        end = time.time() + 15
        while time.time() < end:
            if select.select([reader.stdout], [], [], 0.2)[0]:
                d = os.read(reader.stdout.fileno(), 65536)
                if not d:
                    break
                out += d
            fresh = [n for n in spin_numbers(out.decode("latin-1")) if n > last_before]
            if len(fresh) >= 3:
                break
    finally:
        reader.kill()
        reader.wait()
    fresh = [n for n in spin_numbers(out.decode("latin-1")) if n > last_before]
    assert len(fresh) >= 3, f"no fresh output after the restart (last before {last_before}): {out[-300:]!r}\n" \
        + daemon.log()[-2000:]
    # the numbers jump: what the guest printed while no vmmsd was there is gone, not queued
    assert min(fresh) > last_before + 1
    end = time.time() + 10
    while max(spin_numbers(log.read_text(errors="replace"))) < max(fresh) and time.time() < end:
        time.sleep(0.05)
    assert max(spin_numbers(log.read_text(errors="replace"))) >= max(fresh), "console.log stopped growing"
    assert "console reconnected" in daemon.log()
    request_state(c, "chatty", OFF)
    wait_state(c, "chatty", OFF)


def test_reattach_refuses_an_impostor_socket(daemon):
    """A process that is not the worker (here root, listening at the VM's control socket while
    the real worker still runs under the pid file's pid) is not trusted with the VM: the VM is
    set Off with a reason and Major Failure health, and vmmsd logs why."""
    c = daemon.client()
    define(c, guest_xml("mark", guest_elf("spin")))
    wait_job(c, request_state(c, "mark", RUNNING)["result"]["Job"])
    wait_state(c, "mark", RUNNING)
    pid = daemon.worker_pid("mark")
    c.close()
    daemon.kill9()
    path = daemon.run / "vms" / "mark" / "control.sock"
    path.unlink()
    fake = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    fake.bind(str(path))
    fake.listen(4)
    try:
        daemon.start()
        c = daemon.client()
        vm = wait_state(c, "mark", OFF, timeout=10)
        assert vm["HealthState"] == 20, vm
        assert "refused to reattach" in vm["ErrorDescription"], vm
        assert f"pid {os.getpid()} uid 0" in vm["ErrorDescription"] and f"expected the worker pid {pid}" \
            in vm["ErrorDescription"], vm
        assert "refused to reattach" in daemon.log()
        # nothing was sent to the impostor beyond the connection
        fake.settimeout(0.5)
        conn, _ = fake.accept()
        conn.settimeout(0.5)
        try:
            assert conn.recv(100) == b""
        except socket.timeout:
            pass
        conn.close()
    finally:
        fake.close()
        os.kill(pid, signal.SIGKILL)


def test_restart_after_worker_died_while_down(daemon):
    c = daemon.client()
    define(c, guest_xml("ghost", guest_elf("spin")))
    wait_job(c, request_state(c, "ghost", RUNNING)["result"]["Job"])
    wait_state(c, "ghost", RUNNING)
    pid = daemon.worker_pid("ghost")
    c.close()
    daemon.kill9()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    daemon.start()
    c = daemon.client()
    vm = wait_state(c, "ghost", OFF, timeout=10)
    assert "worker gone while vmmsd was down" in vm["ErrorDescription"]


def test_many_clients_at_once(daemon):
    c = daemon.client()
    for i in range(4):
        define(c, guest_xml(f"mc{i}", guest_elf("spin")))
    errors = []

    def worker(i):
        try:
            cl = daemon.client()
            for _ in range(20):
                assert len(cl.result("EnumerateInstances", ClassName="Msvm_ComputerSystem")) == 4
            if i < 4:
                wait_job(cl, request_state(cl, f"mc{i}", RUNNING)["result"]["Job"])
                wait_state(cl, f"mc{i}", RUNNING)
                request_state(cl, f"mc{i}", OFF)
                wait_state(cl, f"mc{i}", OFF)
            cl.close()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    assert all(cs(c, f"mc{i}")["EnabledState"] == OFF for i in range(4))
