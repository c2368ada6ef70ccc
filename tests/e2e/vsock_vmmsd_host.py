#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Host half of tests/e2e/test_vsock_vmmsd.py, run as root where KVM is (inside
tests/kvmhost/run): a private vmmsd runs the bundled guest (with vmms-guestd) and a <vsock>
device, so the worker is sandboxed and reaches host listeners only through vmmsd's vsock
connector (lib/ctlproto.h). Checks: the host reaches a guest port through
<runtime>/vms/<name>/vsock.sock ("CONNECT 5000") and gets its data echoed; the guest's
connection to host port 6000 lands on the listener at vsock.sock_6000 (hello and answer); a
guest connection to a port nobody listens on is refused at once; and after a pause and resume
the agent's time sync brings a guest clock set an hour back to within 2 s of the host's; and
after vmmsd is killed (-9) and restarted, the reattached worker's new vsock connector still
takes the guest's connection to host port 6000 to vsock.sock_6000.
Prints "VV-E2E: PASS|FAIL name" lines and "VV-E2E: DONE".
Usage: vsock_vmmsd_host.py BUILD_DIR VSOCK_ECHO_BINARY"""
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
os.environ["VMMS_BUILD"] = str(pathlib.Path(sys.argv[1]).resolve())
from vmmsd_util import PAUSED, RUNNING, Vmmsd, build_dir, cs, define, request_state, wait_job, wait_state, Report  # noqa: E402
import vmmsd_util  # noqa: E402

VM = "vv"
report = Report("VV-E2E")
say, check = report.say, report.check


def heartbeat(c):
    return vmmsd_util.heartbeat(c, VM)


def wait_hb(c, want, timeout):
    return vmmsd_util.wait_heartbeat(c, VM, want, timeout, give_up_when_off=False)


def guest_exec_bg(d, *argv):
    """virtctl exec in the background; its stdout lines are collected in .lines."""
    p = subprocess.Popen([str(build_dir() / "virtctl"), "--socket", str(d.sock), "exec", VM, "--"] + list(argv),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    p.lines = []
    p.ev = threading.Event()

    def reader():
        for line in p.stdout:
            p.lines.append(line)
            if "vsock-listening" in line:
                p.ev.set()
    threading.Thread(target=reader, daemon=True).start()
    return p


def connect_guest(vs, port):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(60)
    s.connect(vs)
    s.sendall(f"CONNECT {port}\n".encode())
    line = b""
    while not line.endswith(b"\n"):
        b = s.recv(1)
        if not b:
            raise RuntimeError(f"CONNECT {port}: closed after {line!r}")
        line += b
    if not line.startswith(b"OK"):
        raise RuntimeError(f"CONNECT {port}: {line!r}")
    return s


def vsock_checks(d, c, echo_bin):
    vdir = d.run / "vms" / VM
    vs = str(vdir / "vsock.sock")
    p = d.virtctl("copy-to", VM, echo_bin, "/vsock_echo", timeout=120)
    check("copy vsock_echo into the guest", p.returncode == 0, p)

    # The guest's connection to host port 6000 must land here (listen before it can try).
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(vs + "_6000")
    lst.listen(1)
    lst.settimeout(120)
    g = guest_exec_bg(d, "/vsock_echo", "5000", "6000")
    if not g.ev.wait(120):
        check("guest echo server up", False, "".join(g.lines))
        g.kill()
        return
    s = connect_guest(vs, 5000)
    data = os.urandom(256 * 1024)
    got = bytearray()

    def rd():
        while True:
            b = s.recv(65536)
            if not b:
                break
            got.extend(b)
    t = threading.Thread(target=rd, daemon=True)
    t.start()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    t.join(120)
    s.close()
    check("host -> guest through vsock.sock: 256 KiB echoed", bytes(got) == data, (len(got), len(data)))
    try:
        conn, _ = lst.accept()
        conn.settimeout(60)
        hello = b""
        while not hello.endswith(b"\n"):
            b = conn.recv(1)
            if not b:
                break
            hello += b
        check("guest -> host port 6000 reaches vsock.sock_6000", hello == b"hello from the guest\n", hello)
        conn.sendall(b"hello from the host\n")
        conn.close()
    except OSError as e:
        check("guest -> host port 6000 reaches vsock.sock_6000", False, f"{e!r}; guest said {''.join(g.lines)}")
    try:
        g.wait(60)
    except subprocess.TimeoutExpired:
        g.kill()
    time.sleep(0.5)
    out = "".join(g.lines)
    check("the guest got the host's answer", "VMMS-TEST: vsock-host-said hello from the host" in out, out)
    lst.close()

    # Nobody listens on host port 6001: the guest's connect is refused (RST), and promptly.
    g = guest_exec_bg(d, "/vsock_echo", "5001", "6001")
    if g.ev.wait(120):
        connect_guest(vs, 5001).close()
        t0 = time.time()
        try:
            g.wait(60)
        except subprocess.TimeoutExpired:
            g.kill()
        time.sleep(0.5)
        out = "".join(g.lines)
        check("guest -> host port without listener is refused", "FAIL connect to host" in out, out)
        check("refusal is prompt (< 10 s)", time.time() - t0 < 10, time.time() - t0)
    else:
        check("guest echo server up (6001)", False, "".join(g.lines))
        g.kill()


def guest_to_host_6000(d, vs, port, name):
    """The guest's echo server on port; after one echo it connects to host port 6000, which
    must land on vs_6000."""
    try:
        os.unlink(vs + "_6000")  # the first round's listener, closed but not removed
    except OSError:
        pass
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(vs + "_6000")
    lst.listen(1)
    lst.settimeout(120)
    try:
        g = guest_exec_bg(d, "/vsock_echo", str(port), "6000")
        if not g.ev.wait(120):
            check(f"guest echo server up ({name})", False, "".join(g.lines))
            g.kill()
            return
        s = connect_guest(vs, port)
        s.sendall(b"ping")
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
        s.close()
        try:
            conn, _ = lst.accept()
            conn.settimeout(60)
            hello = b""
            while not hello.endswith(b"\n"):
                b = conn.recv(1)
                if not b:
                    break
                hello += b
            check(f"guest -> host port 6000 reaches vsock.sock_6000 {name}", hello == b"hello from the guest\n", hello)
            conn.sendall(b"hello from the host\n")
            conn.close()
        except OSError as e:
            check(f"guest -> host port 6000 reaches vsock.sock_6000 {name}", False,
                  f"{e!r}; guest said {''.join(g.lines)}")
        try:
            g.wait(60)
        except subprocess.TimeoutExpired:
            g.kill()
        time.sleep(0.5)
        out = "".join(g.lines)
        check(f"the guest got the host's answer {name}", "VMMS-TEST: vsock-host-said hello from the host" in out, out)
    finally:
        lst.close()
        try:
            os.unlink(vs + "_6000")
        except OSError:
            pass


def reattach_checks(d, c):
    """vmmsd dies (kill -9) and comes back: the old vsock connector died with it, and the
    reattach hands the worker a new one, so the guest still reaches host listeners."""
    pid = d.worker_pid(VM)
    c.close()
    d.kill9()
    d.start()
    c = d.client()
    vm = wait_state(c, VM, RUNNING, timeout=60)
    check("reattached to the same worker", vm["ProcessID"] == pid and d.worker_pid(VM) == pid, (vm, pid))
    check("heartbeat OK after the reattach", wait_hb(c, 2, 180), heartbeat(c))
    check("vmmsd reconnected the vsock connector", "vsock connector reconnected" in d.log(), d.log()[-2000:])
    guest_to_host_6000(d, str(d.run / "vms" / VM / "vsock.sock"), 5002, "after a vmmsd restart")
    return c


def time_sync_checks(d, c):
    wrong = int(time.time()) - 3600
    p = d.virtctl("exec", VM, "--", "date", "-s", f"@{wrong}", timeout=60)
    check("set the guest clock an hour back", p.returncode == 0, p)
    p = d.virtctl("exec", VM, "--", "date", "+%s", timeout=60)
    skew = abs(int(p.stdout.strip() or 0) - time.time())
    check("the guest clock is wrong before the pause", skew > 3000, (p, skew))
    r = request_state(c, VM, PAUSED)
    check("pause accepted", r["result"]["ReturnValue"] in (0, 4096), r)
    wait_state(c, VM, PAUSED, timeout=60)
    time.sleep(3)
    r = request_state(c, VM, RUNNING)
    check("resume accepted", r["result"]["ReturnValue"] in (0, 4096), r)
    wait_state(c, VM, RUNNING, timeout=60)
    skew = None
    for _ in range(60):
        p = d.virtctl("exec", VM, "--", "date", "+%s", timeout=60)
        if p.returncode == 0 and p.stdout.strip().isdigit():
            skew = abs(int(p.stdout.strip()) - time.time())
            if skew <= 2:
                break
        time.sleep(1)
    check("guest clock within 2 s of the host after resume", skew is not None and skew <= 2, (skew, p))


def main():
    echo_bin = sys.argv[2]
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="vmms-vv-"))
    gdir = build_dir() / "guest"
    xml = (f"<domain type='kvm'><name>{VM}</name><memory unit='MiB'>256</memory><vcpu>1</vcpu>"
           f"<os><type arch='x86_64'>hvm</type><kernel>{gdir / 'bzImage'}</kernel>"
           f"<initrd>{gdir / 'initramfs.cpio.gz'}</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
           "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot>"
           "<devices><serial type='stdio'><target port='0'/></serial>"
           "<vsock model='virtio'><cid auto='no' address='3'/></vsock></devices></domain>")
    (tmp / "d").mkdir()
    d = Vmmsd(tmp / "d").start()
    c = d.client()
    try:
        define(c, xml)
        r = request_state(c, VM, RUNNING)
        j = wait_job(c, r["result"]["Job"], timeout=120)
        check("start", j["JobState"] == 7, j)
        ok = wait_hb(c, 2, 300)
        check("heartbeat OK after boot", ok, heartbeat(c))
        if not ok:
            return
        vsock_checks(d, c, echo_bin)
        time_sync_checks(d, c)
        c = reattach_checks(d, c)
        check("VM still running", cs(c, VM)["EnabledState"] == RUNNING, cs(c, VM))
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


if __name__ == "__main__":
    main()
    sys.exit(1 if report.failures else 0)
