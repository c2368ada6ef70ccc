# SPDX-License-Identifier: GPL-2.0-only
"""vmms-worker --control-fd: a harness plays vmmsd (listening socket, fds over SCM_RIGHTS,
length-framed JSON) and drives ring-3 test guests on /dev/kvm: life cycle, events, reattach,
hostile controllers, peer uid check, and the seccomp filters seen from /proc."""
import json
import os
import select
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import build_dir

if not os.access("/dev/kvm", os.R_OK | os.W_OK):
    pytest.skip("no usable /dev/kvm", allow_module_level=True)


def guest(name):
    elf = build_dir() / "guests" / f"{name}.elf"
    if not elf.exists():
        pytest.skip(f"{elf} missing: make BUILD=... test-guests")
    return str(elf)


def xml(name, elf, rng=False, on_reboot="destroy", serial=True):
    dev = "<serial type='pty'><target port='0'/></serial>" if serial else ""
    if rng:
        dev += "<rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>"
    return (f"<domain type='kvm'><name>{name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>"
            f"<os><type arch='x86_64'>hvm</type><kernel>{elf}</kernel></os>"
            f"<on_poweroff>destroy</on_poweroff><on_reboot>{on_reboot}</on_reboot>"
            f"<on_crash>destroy</on_crash><devices>{dev}</devices></domain>")


class Serial:
    """Our end of the guest's serial socket, drained on a thread."""

    def __init__(self):
        self.ours, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.buf = bytearray()
        self.lock = threading.Lock()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                d = self.ours.recv(65536)
            except OSError:
                return
            if not d:
                return
            with self.lock:
                self.buf += d

    def text(self):
        with self.lock:
            return self.buf.decode("latin-1")

    def wait_for(self, needle, timeout=20, count=1):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.text().count(needle) >= count:
                return True
            time.sleep(0.02)
        raise AssertionError(f"{needle!r} x{count} not seen on the serial port; got {self.text()[-400:]!r}")


class Conn:
    """One controller connection."""

    def __init__(self, addr):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect(addr)
        self.events = []
        self.next_id = 1

    def send(self, msg, fds=()):
        body = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
        frame = struct.pack(">I", len(body)) + body
        if fds:
            socket.send_fds(self.s, [frame], list(fds))
        else:
            self.s.sendall(frame)

    def _recv_exact(self, n):
        data = b""
        while len(data) < n:
            d = self.s.recv(n - len(data))
            if not d:
                raise EOFError("connection closed")
            data += d
        return data

    def recv(self):
        (n,) = struct.unpack(">I", self._recv_exact(4))
        assert n <= 1 << 20
        return json.loads(self._recv_exact(n))

    def reply(self, want_id):
        while True:
            m = self.recv()
            if "event" in m:
                self.events.append(m)
                continue
            assert m.get("id") == want_id, m
            return m

    def req(self, cmd, fds=(), **kw):
        i = self.next_id
        self.next_id += 1
        self.send(dict(id=i, cmd=cmd, **kw), fds)
        return self.reply(i)

    def event(self, timeout=20, **match):
        """Next event matching all of match (earlier non-matching ones are kept)."""
        end = time.monotonic() + timeout
        while True:
            for e in self.events:
                if all(e.get(k) == v for k, v in match.items()):
                    self.events.remove(e)
                    return e
            self.s.settimeout(max(0.1, end - time.monotonic()))
            if time.monotonic() > end:
                raise AssertionError(f"no event {match}; have {self.events}")
            self.events.append(self.recv())

    def closed(self, timeout=5):
        """True when the worker hung up (after any pending frames)."""
        self.s.settimeout(timeout)
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


class Worker:
    def __init__(self, tmp_path, *args):
        self.addr = f"\0vmms-test-ctl-{os.getpid()}-{id(self)}"
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(self.addr)
        self.lsock.listen(4)
        fd = self.lsock.fileno()
        self.err = open(tmp_path / "worker.stderr", "w+b")
        self.proc = subprocess.Popen([str(build_dir() / "vmms-worker"), "--control-fd", str(fd), *args],
                                     pass_fds=[fd], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.err)
        self.lsock.close()  # the worker holds it now
        self.serial = Serial()
        self.files = []

    def connect(self):
        return Conn(self.addr)

    def resources(self, elf, serial=True):
        kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
        kernel = os.open(elf, os.O_RDONLY | os.O_CLOEXEC)
        self.files += [kvm, kernel]
        names, fds = ["kvm", "kernel"], [kvm, kernel]
        if serial:
            names.append("serial")
            fds.append(self.serial.theirs.fileno())
        return names, fds

    def configure(self, c, name, elf, **kw):
        names, fds = self.resources(elf)
        r = c.req("fds", fds=fds, names=names)
        assert r["ok"], r
        r = c.req("configure", xml=xml(name, elf, **kw))
        assert r["ok"] and r["state"] == "configured", r
        self.serial.theirs.close()  # the worker has its own copy now

    def stderr(self):
        self.err.seek(0)
        return self.err.read().decode("latin-1", "replace")

    def wait(self, timeout=20):
        return self.proc.wait(timeout)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for fd in self.files:
            os.close(fd)
        self.files = []


@pytest.fixture
def worker(tmp_path):
    made = []

    def make(*args):
        w = Worker(tmp_path, *args)
        made.append(w)
        return w

    yield make
    for w in made:
        w.kill()


def test_uart_guest_powers_off(worker):
    w = worker()
    c = w.connect()
    assert c.req("query")["state"] == "off"
    w.configure(c, "ctl-uart", guest("uart"))
    r = c.req("start")
    assert r["ok"] and r["state"] == "running", r
    assert c.event(event="state", state="running")
    stopped = c.event(event="stopped")
    assert stopped["outcome"] == "poweroff" and stopped["status"] == 0, stopped
    assert w.wait() == 0, w.stderr()
    w.serial.wait_for("DONE uart failures=0", timeout=5)
    assert "FAIL" not in w.serial.text()
    # The events came in order: running, then off, then stopped.
    assert c.closed()


def lines_after(serial, mark):
    return serial.text()[mark:].count("\nspin ")


def test_pause_resume_reset_stop(worker):
    w = worker()
    c = w.connect()
    w.configure(c, "ctl-spin", guest("spin"))
    assert c.req("start")["ok"]
    w.serial.wait_for("spin 2")

    r = c.req("pause")
    assert r["ok"] and r["state"] == "paused", r
    assert c.event(event="state", state="paused")
    time.sleep(0.3)  # output already in flight drains
    mark = len(w.serial.text())
    time.sleep(1.0)
    assert len(w.serial.text()) == mark, "guest output while paused"
    assert c.req("query")["state"] == "paused"
    r = c.req("shutdown")
    assert not r["ok"] and r["error"]["name"] == "InvalidState", r
    r = c.req("pause")
    assert not r["ok"] and r["error"]["name"] == "InvalidState", r

    r = c.req("resume")
    assert r["ok"] and r["state"] == "running", r
    end = time.monotonic() + 10
    while lines_after(w.serial, mark) < 2 and time.monotonic() < end:
        time.sleep(0.05)
    assert lines_after(w.serial, mark) >= 2, "no output after resume"

    r = c.req("reset")
    assert r["ok"] and r["state"] == "running", r
    w.serial.wait_for("vmms test guest spin: started", count=2)
    q = c.req("query")
    assert q["boots"] == 2 and q["state"] == "running", q

    r = c.req("stop")
    assert r["ok"] and r["state"] == "off", r
    stopped = c.event(event="stopped")
    assert stopped["outcome"] == "turned-off" and stopped["status"] == 5, stopped
    assert w.wait() == 5, w.stderr()


def test_reattach(worker):
    w = worker()
    c = w.connect()
    w.configure(c, "ctl-reattach", guest("spin"))
    assert c.req("start")["ok"]
    w.serial.wait_for("spin 1")
    c.close()  # vmmsd went away
    mark = len(w.serial.text())
    time.sleep(0.5)
    assert w.proc.poll() is None, w.stderr()
    end = time.monotonic() + 10
    while lines_after(w.serial, mark) < 2 and time.monotonic() < end:
        time.sleep(0.05)
    assert lines_after(w.serial, mark) >= 2, "guest stopped when the controller left"
    c2 = w.connect()  # a restarted vmmsd
    q = c2.req("query")
    assert q["ok"] and q["state"] == "running" and q["name"] == "ctl-reattach", q
    assert c2.req("stop")["ok"]
    assert w.wait() == 5


def test_peer_credentials_name_the_worker(worker):
    """The worker listens again on the socket it inherited, so a controller's SO_PEERCRED names
    the worker (what a restarted vmmsd checks), not the process that created the socket (us)."""
    w = worker()
    c = w.connect()
    assert c.req("query")["ok"]  # served: the worker has run its listen() by now
    c.close()
    c = w.connect()
    pid, uid, _ = struct.unpack("3i", c.s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    assert pid == w.proc.pid and pid != os.getpid()
    assert uid == os.geteuid()
    assert c.req("stop")["ok"]
    assert w.wait() == 5


def test_reattach_replaces_the_serial_stream(worker):
    """After a reattach the controller hands over a new serial stream ("fds" after configure):
    the guest's output, dropped while nobody read it, arrives on the new one."""
    w = worker()
    c = w.connect()
    w.configure(c, "ctl-restream", guest("spin"))
    assert c.req("start")["ok"]
    w.serial.wait_for("spin 1")
    c.close()
    w.serial.ours.shutdown(socket.SHUT_RDWR)  # the old vmmsd and its end of the stream are gone
    w.serial.ours.close()
    time.sleep(0.5)        # the guest keeps printing into nothing, without blocking
    assert w.proc.poll() is None, w.stderr()
    c2 = w.connect()
    assert c2.req("query")["state"] == "running"
    # only serial/console may come after configure, and only for ports the guest has
    kvm = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    r = c2.req("fds", fds=[kvm], names=["kvm"])
    os.close(kvm)
    assert not r["ok"] and r["error"]["name"] == "InvalidState", r
    extra = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r = c2.req("fds", fds=[extra[1].fileno()], names=["console"])
    assert not r["ok"] and r["error"]["name"] == "InvalidParameter", r
    rd, wr = os.pipe()
    r = c2.req("fds", fds=[wr], names=["serial"])
    assert not r["ok"] and r["error"]["name"] == "InvalidParameter", r
    os.close(rd)
    os.close(wr)
    new = Serial()
    r = c2.req("fds", fds=[new.theirs.fileno()], names=["serial"])
    new.theirs.close()
    assert r["ok"] and r["state"] == "running", r
    new.wait_for("spin ", count=3)
    # input reaches the new stream's reader side too: the worker watches it (no crash, no
    # block); the guest ignores it
    new.ours.sendall(b"x")
    q = c2.req("query")
    assert q["ok"] and q["state"] == "running"
    assert "bytes of guest output dropped" in w.stderr()
    dropped = int(w.stderr().split("stream replaced by the controller; ")[1].split()[0])
    assert dropped > 0, w.stderr()
    # a second replacement (another restart) works the same; the previous stream ends
    newer = Serial()
    assert c2.req("fds", fds=[newer.theirs.fileno()], names=["serial"])["ok"]
    newer.theirs.close()
    newer.wait_for("spin ", count=2)
    new.t.join(5)
    assert not new.t.is_alive(), "the replaced stream was not closed"
    assert c2.req("stop")["ok"]
    assert w.wait() == 5
    extra[0].close()
    extra[1].close()


VSOCK_XML = "<vsock model='virtio'><cid auto='no' address='3'/></vsock></devices>"


def test_reattach_replaces_the_vsock_connector(worker):
    """The vsock connector dies with vmmsd: after a reattach the controller hands over a new
    one ("fds" after configure), a SOCK_SEQPACKET socket, only for a definition with a vsock;
    the worker drops (closes) the one it replaces."""
    w = worker()
    c = w.connect()
    spin = guest("spin")
    names, fds = w.resources(spin)
    vs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    vs.bind(f"\0vmms-test-vsock-rc-{os.getpid()}")
    vs.listen(4)
    old = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r = c.req("fds", fds=fds + [vs.fileno(), old[1].fileno()], names=names + ["vsock", "vsock-connector"])
    assert r["ok"], r
    vs.close()
    old[1].close()
    r = c.req("configure", xml=xml("ctl-vconn", spin).replace("</devices>", VSOCK_XML))
    assert r["ok"], r
    w.serial.theirs.close()
    assert c.req("start")["ok"]
    w.serial.wait_for("spin 1")
    c.close()  # vmmsd went away (its end of the connector stays open here, to watch ours)
    c2 = w.connect()
    assert c2.req("query")["state"] == "running"
    # a stream socket is the wrong kind; the connector is untouched then
    bad = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    r = c2.req("fds", fds=[bad[1].fileno()], names=["vsock-connector"])
    assert not r["ok"] and r["error"]["name"] == "InvalidParameter", r
    old[0].settimeout(0.3)
    with pytest.raises(socket.timeout):
        old[0].recv(64)
    new = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r = c2.req("fds", fds=[new[1].fileno()], names=["vsock-connector"])
    new[1].close()
    assert r["ok"] and r["state"] == "running", r
    old[0].settimeout(5)
    assert old[0].recv(64) == b"", "the replaced connector was not closed"
    assert "vsock connector replaced by the controller" in w.stderr()
    # together with a stream, in one message: all of it is taken
    newer = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ser = Serial()
    r = c2.req("fds", fds=[ser.theirs.fileno(), newer[1].fileno()], names=["serial", "vsock-connector"])
    ser.theirs.close()
    newer[1].close()
    assert r["ok"], r
    new[0].settimeout(5)
    assert new[0].recv(64) == b"", "the replaced connector was not closed"
    ser.wait_for("spin ", count=2)
    assert w.proc.poll() is None, w.stderr()
    assert c2.req("stop")["ok"]
    assert w.wait() == 5
    for s in (*bad, old[0], new[0], newer[0]):
        s.close()


def test_vsock_connector_replacement_needs_a_vsock(worker):
    """Without a <vsock> there is no connector to replace: InvalidParameter, nothing moves."""
    w = worker()
    c = w.connect()
    w.configure(c, "ctl-novconn", guest("spin"))
    assert c.req("start")["ok"]
    w.serial.wait_for("spin 1")
    sp = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    r = c.req("fds", fds=[sp[1].fileno()], names=["vsock-connector"])
    assert not r["ok"] and r["error"]["name"] == "InvalidParameter", r
    assert "no vsock" in r["error"]["message"], r
    # the descriptor was not kept: its peer sees the worker's copy closed
    sp[1].close()
    sp[0].settimeout(5)
    assert sp[0].recv(64) == b""
    sp[0].close()
    assert c.req("query")["state"] == "running"
    assert c.req("stop")["ok"]
    assert w.wait() == 5


def test_second_controller_waits_its_turn(worker):
    w = worker()
    c1 = w.connect()
    c2 = w.connect()  # sits in the backlog while c1 is served
    assert c1.req("query")["ok"]
    c2.s.settimeout(0.5)
    c2.send({"id": 7, "cmd": "query"})
    with pytest.raises(socket.timeout):
        c2.recv()
    c1.close()
    c2.s.settimeout(10)
    assert c2.reply(7)["ok"]
    assert c2.req("stop")["ok"]
    assert w.wait() == 5


def test_hostile_controller(worker):
    w = worker()
    c = w.connect()
    spin = guest("spin")

    def err(m, name):
        assert m.get("ok") is False and m["error"]["name"] == name, m
        return m

    err(c.req("frobnicate"), "NotSupported")
    c.send({"cmd": "query"})
    m = c.recv()
    assert m["id"] is None and m["error"]["name"] == "InvalidParameter", m
    c.send({"id": "one", "cmd": "query"})
    err(c.recv(), "InvalidParameter")
    c.send({"id": 3, "cmd": 5})
    err(c.reply(3), "InvalidParameter")
    c.send([1, 2, 3])
    err(c.recv(), "InvalidParameter")
    c.send(b"{not json")
    err(c.recv(), "InvalidParameter")
    err(c.req("configure", xml=5), "InvalidParameter")
    err(c.req("configure", xml="<domain"), "InvalidParameter")
    err(c.req("start"), "InvalidState")
    # configure before the descriptors: refused, and may be retried
    err(c.req("configure", xml=xml("ctl-hostile", spin)), "InvalidParameter")
    # descriptors: counts, names, kinds
    null = os.open("/dev/null", os.O_RDONLY)
    try:
        err(c.req("fds", fds=[null], names=["kvm", "kernel"]), "InvalidParameter")
        err(c.req("fds", fds=[null, null], names=["kernel", "kernel"]), "InvalidParameter")
        err(c.req("fds", fds=[null], names=["../etc/passwd"]), "InvalidParameter")
        err(c.req("fds", fds=[null], names=["kernel"]), "InvalidParameter")  # not a regular file
        err(c.req("fds", fds=[null] * 9, names=["disk:vd%d" % i for i in range(9)]), "InvalidParameter")
        err(c.req("query", fds=[null]), "InvalidParameter")
    finally:
        os.close(null)
    w.configure(c, "ctl-hostile", spin)
    err(c.req("configure", xml=xml("ctl-hostile", spin)), "InvalidState")
    null = os.open("/dev/null", os.O_RDONLY)
    err(c.req("fds", fds=[null], names=["initrd"]), "InvalidState")
    os.close(null)
    assert c.req("start")["ok"]
    w.serial.wait_for("spin 1")
    err(c.req("start"), "InvalidState")
    err(c.req("resume"), "InvalidState")
    # a frame over 1 MiB: an error, then the worker hangs up (the stream cannot resync)
    c.s.sendall(struct.pack(">I", (1 << 20) + 1))
    m = c.recv()
    assert m["ok"] is False and m["error"]["name"] == "InvalidParameter", m
    assert c.closed()
    # garbage bytes: read as a huge length, the connection is closed
    c = w.connect()
    c.s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    assert c.closed()
    # a frame cut short by the peer
    c = w.connect()
    c.s.sendall(struct.pack(">I", 100) + b'{"id":1')
    c.close()
    # the guest never noticed
    c = w.connect()
    mark = len(w.serial.text())
    q = c.req("query")
    assert q["ok"] and q["state"] == "running" and q["boots"] == 1, q
    end = time.monotonic() + 10
    while lines_after(w.serial, mark) < 1 and time.monotonic() < end:
        time.sleep(0.05)
    assert lines_after(w.serial, mark) >= 1
    assert c.req("stop")["ok"]
    assert w.wait() == 5


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another uid")
def test_other_uid_refused(worker):
    w = worker()
    r, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        result = "error"
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            c = Conn(w.addr)
            try:
                c.send({"id": 1, "cmd": "stop"})
            except (BrokenPipeError, ConnectionResetError):
                pass  # refused before we could ask: the reason is still readable
            try:
                m = c.recv()
                result = "served" if m.get("ok") else m.get("error", {}).get("name", "?")
                if m.get("ok") is False and m.get("id") is None:
                    result = "refused:" + m["error"]["name"]
            except EOFError:
                result = "refused:eof"
        except Exception as e:  # report, never raise in the child
            result = "error:" + repr(e)
        os.write(wr, result.encode())
        os._exit(0)
    os.close(wr)
    os.waitpid(pid, 0)
    result = os.read(r, 200).decode()
    os.close(r)
    assert result.startswith("refused"), result
    assert w.proc.poll() is None, "the refused 'stop' stopped the worker"
    c = w.connect()
    assert c.req("query")["ok"]
    assert c.req("stop")["ok"]
    assert w.wait() == 5


def seccomp_of(pid):
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        st = {}
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                st[k] = v.strip()
        out[int(tid)] = (int(st["Seccomp"]), int(st.get("Seccomp_filters", "-1")), st["Name"])
    return out


@pytest.mark.parametrize("mode", ["default", "off"])
def test_seccomp_filters_installed(worker, mode):
    w = worker() if mode == "default" else worker("--seccomp=off")
    c = w.connect()
    w.configure(c, "ctl-seccomp", guest("spin"), rng=True)
    assert c.req("start")["ok"]
    w.serial.wait_for("spin 1")
    tasks = seccomp_of(w.proc.pid)
    with open(f"/proc/{w.proc.pid}/status") as f:
        assert ("Seccomp:\t2" in f.read()) == (mode == "default")
    # main, one vCPU thread, one io thread (virtio-rng) at least
    assert len(tasks) >= 3, tasks
    if mode == "off":
        assert all(s == 0 for s, _, _ in tasks.values()), tasks
    else:
        assert all(s == 2 and n >= 1 for s, n, _ in tasks.values()), tasks
        # vCPU and io threads stack their own narrower filter over the base one
        assert sum(1 for _, n, _ in tasks.values() if n >= 2) >= 2, tasks
        assert tasks[w.proc.pid][1] == 1, tasks
    # reset rebuilds the machine under the filter (memfd, KVM_CREATE_VM, threads)
    assert c.req("reset")["ok"]
    w.serial.wait_for("vmms test guest spin: started", count=2)
    assert c.req("stop")["ok"]
    assert w.wait() == 5, w.stderr()


def test_guest_reboot_restarts_in_place(worker):
    w = worker()
    c = w.connect()
    w.configure(c, "ctl-reboot", guest("reset"), on_reboot="restart")
    assert c.req("start")["ok"]
    for _ in range(2):
        e = c.event(event="reboot")
        assert e["outcome"] == "reboot", e
    q = c.req("query")
    assert q["state"] == "running" and q["boots"] >= 3, q
    assert w.proc.poll() is None
    assert c.req("stop")["ok"]
    assert c.event(event="stopped")["outcome"] == "turned-off"
    assert w.wait() == 5


@pytest.mark.parametrize("name,outcome,status", [("crash", "crash", 4), ("reset", "reboot", 3)])
def test_outcomes(worker, name, outcome, status):
    w = worker()
    c = w.connect()
    w.configure(c, f"ctl-{name}", guest(name))
    assert c.req("start")["ok"]
    e = c.event(event="stopped")
    assert e["outcome"] == outcome and e["status"] == status, e
    assert w.wait() == status


def test_stopped_event_waits_for_a_controller(worker):
    w = worker()
    c = w.connect()
    w.configure(c, "ctl-linger", guest("uart"))
    assert c.req("start")["ok"]
    c.close()  # the controller is gone when the guest powers off
    time.sleep(1.0)
    assert w.proc.poll() is None, "worker left before anyone could learn the outcome"
    c2 = w.connect()
    e = c2.event(event="stopped")
    assert e["outcome"] == "poweroff" and e["status"] == 0, e
    assert w.wait() == 0


def test_vsock_listener_handed_over(worker):
    """The vsock host side arrives as a listening socket; a host program connecting to it
    (served on the device's io thread, under its seccomp filter) does not hurt the worker."""
    w = worker()
    c = w.connect()
    spin = guest("spin")
    names, fds = w.resources(spin)
    vs = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    addr = f"\0vmms-test-vsock-{os.getpid()}"
    vs.bind(addr)
    vs.listen(4)
    assert c.req("fds", fds=fds + [vs.fileno()], names=names + ["vsock"])["ok"]
    vs.close()
    x = xml("ctl-vsock", spin).replace("</devices>", "<vsock model='virtio'><cid auto='no' address='3'/></vsock></devices>")
    r = c.req("configure", xml=x)
    assert r["ok"], r
    w.serial.theirs.close()
    assert c.req("start")["ok"]
    w.serial.wait_for("spin 1")
    h = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    h.settimeout(5)
    h.connect(addr)
    h.sendall(b"CONNECT 1234\n")
    try:
        h.recv(100)  # the guest has no vsock driver: refused or silent, either is fine
    except socket.timeout:
        pass
    h.close()
    mark = len(w.serial.text())
    time.sleep(0.5)
    assert w.proc.poll() is None, w.stderr()
    assert c.req("query")["state"] == "running"
    assert lines_after(w.serial, mark) >= 1
    assert c.req("stop")["ok"]
    assert w.wait() == 5
