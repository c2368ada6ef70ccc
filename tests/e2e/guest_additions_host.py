#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Host half of tests/e2e/test_guest_additions.py, run as root where KVM is (inside
tests/kvmhost/run): a private vmmsd runs the bundled guest (kernel + initramfs with
vmms-guestd) with an ext4 disk and a vsock device, and everything goes through virtctl and the
namespace: exec, exit status, 1 MiB+ output, KVP facts and host pairs, fs freeze (through the
VM's vsock socket, as a backup tool would), heartbeat lost and back, and an orderly shutdown
that leaves the ext4 clean (e2fsck -fn here afterwards). Prints "GA-E2E: PASS|FAIL name" lines
and "GA-E2E: DONE". Usage: guest_additions_host.py BUILD_DIR"""
import json
import os
import pathlib
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
os.environ["VMMS_BUILD"] = str(pathlib.Path(sys.argv[1]).resolve())
from vmmsd_util import OFF, RUNNING, Vmmsd, build_dir, cs, define, request_state, wait_job, wait_state, Report  # noqa: E402
import vmmsd_util  # noqa: E402

VM = "ga"
report = Report("GA-E2E")
say, check = report.say, report.check


def heartbeat(c):
    return vmmsd_util.heartbeat(c, VM)


def wait_hb(c, want, timeout):
    return vmmsd_util.wait_heartbeat(c, VM, want, timeout, give_up_when_off=True)


def agent_call(vsock_path, msg, timeout=60):
    """One request straight to the agent through the VM's vsock socket (root only)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(vsock_path)
    s.sendall(b"CONNECT 5150\n")
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise RuntimeError(f"handshake: {line!r}")
        line += b
    body = json.dumps(msg).encode()
    s.sendall(struct.pack(">I", len(body)) + body)
    f = s.makefile("rb")
    while True:
        n = struct.unpack(">I", f.read(4))[0]
        m = json.loads(f.read(n))
        if m.get("type") == "reply" and m.get("id") == msg["id"]:
            return s, m


def main():
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="vmms-ga-"))
    disk = tmp / "disk.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-F", str(disk), "64M"], check=True)
    g = build_dir() / "guest"
    xml = (f"<domain type='kvm'><name>{VM}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>"
           f"<os><type arch='x86_64'>hvm</type><kernel>{g / 'bzImage'}</kernel>"
           f"<initrd>{g / 'initramfs.cpio.gz'}</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
           "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>"
           f"<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='{disk}'/>"
           "<target dev='vda' bus='virtio'/></disk><serial type='stdio'><target port='0'/></serial>"
           "<vsock model='virtio'><cid auto='no' address='3'/></vsock></devices></domain>")
    (tmp / "d").mkdir()
    d = Vmmsd(tmp / "d").start()
    c = d.client()
    try:
        define(c, xml)
        t0 = time.time()
        r = request_state(c, VM, RUNNING)
        j = wait_job(c, r["result"]["Job"], timeout=120)
        check("start", j["JobState"] == 7, j)
        vs = str(d.run / "vms" / VM / "vsock.sock")
        check("vsock socket 0600", (os.stat(vs).st_mode & 0o777) == 0o600, oct(os.stat(vs).st_mode))
        ok = wait_hb(c, 2, 300)
        check("heartbeat OK after boot", ok, f"heartbeat {heartbeat(c)}; log: {d.log()[-2000:]}")
        if not ok:
            return
        say(f"agent answered {time.time() - t0:.1f} s after start")

        p = d.virtctl("exec", VM, "--", "echo", "42", timeout=120)
        check("exec echo 42", p.returncode == 0 and p.stdout == "42\n", p)
        p = d.virtctl("exec", VM, "--", "sh", "-c", "echo oops >&2; exit 3", timeout=120)
        check("exec failing status", p.returncode == 3 and p.stderr == "oops\n", p)
        big = 1536 * 1024
        p = subprocess.run([str(build_dir() / "virtctl"), "--socket", str(d.sock), "exec", VM, "--",
                            "head", "-c", str(big), "/dev/zero"], capture_output=True, timeout=300)
        check("exec 1.5 MiB output whole", p.returncode == 0 and p.stdout == b"\0" * big,
              (p.returncode, len(p.stdout), p.stderr[-500:]))
        data = os.urandom(256 * 1024)
        p = subprocess.run([str(build_dir() / "virtctl"), "--socket", str(d.sock), "exec", VM, "--", "md5sum"],
                           input=data, capture_output=True, timeout=300)
        import hashlib
        check("exec stdin streamed", p.returncode == 0 and p.stdout.decode().split()[0] == hashlib.md5(data).hexdigest(),
              (p.returncode, p.stdout[:200], p.stderr[-300:]))

        # KVP: the guest's facts, and a host pair the guest can read. The VM has no network
        # card, so the test gives the guest an address of its own (on lo; loopback addresses
        # themselves are not reported) and waits for the facts to show it.
        p = d.virtctl("exec", VM, "--", "ip", "addr", "add", "192.0.2.10/32", "dev", "lo", timeout=120)
        check("exec ip addr add", p.returncode == 0, p)
        facts = {}
        for _ in range(90):
            p = d.virtctl("kvp", VM, timeout=60)
            facts = dict(l.split(None, 1)[1].split("=", 1) for l in p.stdout.splitlines() if l.startswith("guest "))
            if facts.get("FullyQualifiedDomainName") and "192.0.2.10" in facts.get("NetworkAddressIPv4", ""):
                break
            time.sleep(1)
        check("kvp hostname", facts.get("FullyQualifiedDomainName") == "vmms-guest", facts)
        check("kvp kernel version", facts.get("OSKernelVersion", "").startswith("6."), facts)
        check("kvp address", "192.0.2.10" in facts.get("NetworkAddressIPv4", ""), facts)
        p = d.virtctl("kvp", VM, "greeting=hello from the host", timeout=60)
        check("kvp set host pair", p.returncode == 0, p)
        got = ""
        for _ in range(30):
            p = d.virtctl("exec", VM, "--", "cat", "/run/vmms/kvp/greeting", timeout=60)
            got = p.stdout
            if got == "hello from the host":
                break
            time.sleep(1)
        check("kvp host pair readable in the guest", got == "hello from the host", p)

        # Freeze: a write to the frozen fs blocks until thaw.
        p = d.virtctl("exec", VM, "--", "sh", "-c", "mkdir -p /mnt/d && mount -t ext4 /dev/vda /mnt/d && echo mounted",
                      timeout=120)
        check("mount the disk", p.returncode == 0 and "mounted" in p.stdout, p)
        fs, rep = agent_call(vs, {"id": 1, "op": "fsfreeze", "mountpoints": ["/mnt/d"], "timeout": 120})
        check("fsfreeze", rep.get("ok") is True, rep)
        w = subprocess.Popen([str(build_dir() / "virtctl"), "--socket", str(d.sock), "exec", VM, "--", "sh", "-c",
                              "echo data > /mnt/d/during-freeze && echo written"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(8)
        check("write blocks while frozen", w.poll() is None, w.poll())
        body = json.dumps({"id": 2, "op": "fsthaw"}).encode()
        fs.sendall(struct.pack(">I", len(body)) + body)
        try:
            out, err = w.communicate(timeout=120)
            check("write completes after thaw", w.returncode == 0 and "written" in out, (w.returncode, out, err))
        except subprocess.TimeoutExpired:
            w.kill()
            check("write completes after thaw", False, "still blocked 120 s after fsthaw")
        fs.close()

        # Heartbeat: the agent killed -> Lost Communication (13); restarted -> OK (2).
        c.result("Subscribe", Query="SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_HeartbeatComponent'")
        p = d.virtctl("exec", VM, "--", "sh", "-c",
                      "setsid sh -c 'sleep 2; kill $(pidof vmms-guestd); sleep 25; exec /usr/sbin/vmms-guestd' "
                      "</dev/null >/dev/null 2>&1 & echo scheduled", timeout=60)
        check("schedule agent kill and restart", p.returncode == 0 and "scheduled" in p.stdout, p)
        ok13 = wait_hb(c, 13, 25)
        check("heartbeat Lost Communication after the agent is killed", ok13, heartbeat(c))
        ok2 = wait_hb(c, 2, 120)
        check("heartbeat OK after the agent restarts", ok2, heartbeat(c))
        seen = []
        while True:
            ev = c.next_event(timeout=1)
            if not ev:
                break
            seen.append(ev["TargetInstance"]["OperationalStatus"][0])
        check("heartbeat events 13 then 2", seen[-2:] == [13, 2] or (13 in seen and seen[-1] == 2), seen)

        # Orderly shutdown through virtctl; the guest's ext4 is clean afterwards.
        d.virtctl("exec", VM, "--", "sh", "-c", "echo final > /mnt/d/final", timeout=60)
        t1 = time.time()
        p = d.virtctl("shutdown", VM, "--timeout", "240", timeout=400)
        check("virtctl shutdown", p.returncode == 0, p)
        try:
            wait_state(c, VM, OFF, timeout=60)
            check("VM off after shutdown", True)
        except TimeoutError as e:
            check("VM off after shutdown", False, e)
        say(f"shutdown took {time.time() - t1:.1f} s")
        p = subprocess.run(["e2fsck", "-fn", str(disk)], capture_output=True, text=True)
        check("ext4 clean after shutdown (e2fsck -fn)", p.returncode == 0, p.stdout[-1500:] + p.stderr[-500:])
        p = subprocess.run(["debugfs", "-R", "cat /final", str(disk)], capture_output=True, text=True)
        check("data written before shutdown is on disk", p.stdout == "final\n", p)
    except Exception as e:  # noqa: BLE001 - reported as a failure line
        check("no exception", False, repr(e))
    finally:
        if report.failures:
            say("vmmsd log tail:\n" + d.log()[-4000:])
            wl = d.run / "vms" / VM / "worker.log"
            if wl.exists():
                say("worker log tail:\n" + wl.read_text(errors="replace")[-3000:])
            dm = subprocess.run(["dmesg"], capture_output=True, text=True).stdout
            say("kernel seccomp/audit lines:\n" + "\n".join(l for l in dm.splitlines() if "audit" in l or "seccomp" in l)[-2000:])
            con = d.state / "vms" / VM / "console.log"
            if con.exists():
                say("console tail:\n" + con.read_text(errors="replace")[-3000:])
        c.close()
        d.stop()
        say("DONE")
    return 0


if __name__ == "__main__":
    main()
    sys.exit(1 if report.failures else 0)
