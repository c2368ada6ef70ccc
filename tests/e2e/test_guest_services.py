# SPDX-License-Identifier: GPL-2.0-only
"""vmmsd's guest services (parent/guest.c) and virtctl's shutdown/exec/kvp/copy-to without a
Linux guest: a ring-3 test guest (spin) runs under a real, sandboxed worker with a <vsock>
device, so vmmsd treats it as a running VM with a vsock. The test then stands in for the
worker's side of <runtime>/vms/NAME/vsock.sock: it binds its own listener at that path (vmmsd
connects by path each time; the worker keeps listening on the unlinked inode), answers
`CONNECT 5150` with `OK 1` as the worker does, and relays the stream to a real vmms-guestd
started with --listen unix:PATH, or to a small fake agent where the real one must not act on
this host (shutdown). Needs root and /dev/kvm (the worker runs the spin guest).
Run: VMMS_BUILD=build python3 -m pytest tests/e2e/test_guest_services.py"""
import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from vmmsd_util import RUNNING, OFF, Vmmsd, build_dir, cs, cs_path, define, guest_elf, guest_xml, request_state, wait_job, wait_state

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.access("/dev/kvm", os.R_OK | os.W_OK),
                                reason="needs root and /dev/kvm")

VSOCK = "<vsock model='virtio'><cid auto='no' address='3'/></vsock>"
HB_EVENTS = "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_HeartbeatComponent'"


class FakeWorkerSocket:
    """Listens at the VM's vsock.sock path; each connection must start with CONNECT 5150 and
    is then relayed to target() (a new connected socket), or refused when target is None."""

    def __init__(self, path):
        self.path = str(path)
        self.target = None
        self.connects = 0
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
        self.lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lst.bind(self.path)
        self.lst.listen(16)
        self.conns = []
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self):
        while True:
            try:
                c, _ = self.lst.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        line = b""
        while not line.endswith(b"\n") and len(line) < 64:
            b = c.recv(1)
            if not b:
                c.close()
                return
            line += b
        if line != b"CONNECT 5150\n" or self.target is None:
            c.close()   # the worker closes when the guest resets the connection
            return
        try:
            t = self.target()
        except OSError:
            c.close()
            return
        self.connects += 1
        c.sendall(b"OK 1\n")
        self.conns.append((c, t))

        def pump(a, b):
            try:
                while True:
                    d = a.recv(65536)
                    if not d:
                        break
                    b.sendall(d)
            except OSError:
                pass
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        threading.Thread(target=pump, args=(c, t), daemon=True).start()
        threading.Thread(target=pump, args=(t, c), daemon=True).start()

    def drop_all(self):
        for c, t in self.conns:
            for s in (c, t):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.conns = []

    def close(self):
        self.lst.close()


def unix_target(path):
    def connect():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(str(path))
        return s
    return connect


class FakeAgent:
    """Answers ping and records shutdown requests (the real agent would power this host off)."""

    def __init__(self):
        self.ops = []

    def target(self):
        a, b = socket.socketpair()
        threading.Thread(target=self.serve, args=(b,), daemon=True).start()
        return a

    def serve(self, s):
        buf = b""
        try:
            while True:
                d = s.recv(65536)
                if not d:
                    return
                buf += d
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack(">I", buf[:4])[0]:
                    n = struct.unpack(">I", buf[:4])[0]
                    m = json.loads(buf[4:4 + n])
                    buf = buf[4 + n:]
                    self.ops.append(m.get("op"))
                    body = json.dumps({"id": m["id"], "type": "reply", "ok": True}).encode()
                    s.sendall(struct.pack(">I", len(body)) + body)
        except OSError:
            return


@pytest.fixture
def env(tmp_path):
    if not (build_dir() / "vmmsd").exists() or not guest_elf("spin").exists() or not (build_dir() / "vmms-guestd").exists():
        pytest.fail(f"build {build_dir()} first: make all test-guests")
    d = Vmmsd(tmp_path).start()
    c = d.client()
    define(c, guest_xml("g1", guest_elf("spin"), extra=VSOCK))
    r = request_state(c, "g1", RUNNING)
    assert "result" in r, r
    wait_job(c, r["result"]["Job"])
    wait_state(c, "g1", RUNNING)
    vs = d.run / "vms" / "g1" / "vsock.sock"
    assert vs.exists(), "vmmsd did not create the VM's vsock socket"
    assert (vs.stat().st_mode & 0o777) == 0o600
    fake = FakeWorkerSocket(vs)
    agent_sock = tmp_path / "agent.sock"
    kvp_dir = tmp_path / "kvp"
    agent = subprocess.Popen([str(build_dir() / "vmms-guestd"), "--listen", f"unix:{agent_sock}", "--kvp-dir",
                              str(kvp_dir)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(tmp_path / "agent.log", "wb"))
    for _ in range(200):
        if agent_sock.exists():
            break
        time.sleep(0.02)
    env = dict(d=d, c=c, fake=fake, agent=agent, agent_sock=agent_sock, kvp=kvp_dir, tmp=tmp_path)
    yield env
    agent.kill()
    agent.wait()
    fake.close()
    c.close()
    d.stop()


def heartbeat(c, vm):
    r = c.result("ExecQuery", Query="SELECT * FROM Msvm_HeartbeatComponent")
    r = [x for x in r if x["VMName"] == vm]
    assert len(r) == 1, r
    return r[0]["OperationalStatus"][0]


def wait_hb(c, vm, want, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if heartbeat(c, vm) == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"heartbeat of {vm} is {heartbeat(c, vm)}, not {want}")


def test_heartbeat_no_contact_ok_lost_ok_with_events(env):
    c, fake = env["c"], env["fake"]
    sub = c.result("Subscribe", Query=HB_EVENTS)
    assert sub
    assert heartbeat(c, "g1") == 12          # nothing answers yet: No Contact
    time.sleep(4)
    assert heartbeat(c, "g1") == 12
    fake.target = unix_target(env["agent_sock"])
    wait_hb(c, "g1", 2)
    ev = c.next_event(timeout=5)
    assert ev and ev["TargetInstance"]["OperationalStatus"] == [2] and ev["PreviousInstance"]["OperationalStatus"] == [12], ev
    # The agent goes away: Lost Communication (13), not No Contact.
    fake.target = None
    fake.drop_all()
    wait_hb(c, "g1", 13)
    ev = c.next_event(timeout=5)
    assert ev and ev["TargetInstance"]["OperationalStatus"] == [13], ev
    fake.target = unix_target(env["agent_sock"])
    wait_hb(c, "g1", 2)


def test_exec_kvp_copy_through_virtctl(env):
    d, c, fake = env["d"], env["c"], env["fake"]
    fake.target = unix_target(env["agent_sock"])
    wait_hb(c, "g1", 2)
    p = d.virtctl("exec", "g1", "--", "echo", "42")
    assert p.returncode == 0 and p.stdout == "42\n", p
    p = d.virtctl("exec", "g1", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert p.returncode == 7 and p.stdout == "out\n" and p.stderr == "err\n", p
    p = d.virtctl("exec", "g1", "--", "sh", "-c", "kill -TERM $$")
    assert p.returncode == 128 + 15, p
    p = d.virtctl("exec", "g1", "--env", "FOO=bar", "--cwd", "/tmp", "--", "sh", "-c", 'echo "$FOO $(pwd)"')
    assert p.returncode == 0 and p.stdout == "bar /tmp\n", p
    # 2 MiB of output arrives whole (bounded relay, backpressure), and stdin streams in.
    p = subprocess.run([str(build_dir() / "virtctl"), "--socket", str(d.sock), "exec", "g1", "--",
                        "head", "-c", str(2 << 20), "/dev/urandom"], capture_output=True, timeout=120)
    assert p.returncode == 0 and len(p.stdout) == 2 << 20, (p.returncode, len(p.stdout), p.stderr)
    data = os.urandom(3 << 20)
    p = subprocess.run([str(build_dir() / "virtctl"), "--socket", str(d.sock), "exec", "g1", "--", "cat"],
                       input=data, capture_output=True, timeout=120)
    assert p.returncode == 0 and p.stdout == data, (p.returncode, len(p.stdout), p.stderr)
    p = d.virtctl("exec", "g1", "--", "/nonexistent/program")
    assert p.returncode == 127, p
    p = d.virtctl("exec", "g1", "--timeout", "1", "--", "sleep", "30")
    assert p.returncode == 128 + 9, p

    # KVP: guest facts and host items, pushed to the agent (its kvp dir).
    p = d.virtctl("kvp", "g1")
    assert p.returncode == 0 and f"guest  FullyQualifiedDomainName={socket.gethostname()}" in p.stdout, p
    p = d.virtctl("kvp", "g1", "role=web")
    assert p.returncode == 0, p
    for _ in range(50):
        if (env["kvp"] / "role").exists():
            break
        time.sleep(0.1)
    assert (env["kvp"] / "role").read_text() == "web"
    p = d.virtctl("kvp", "g1", "role=db")
    assert p.returncode == 0, p
    p = d.virtctl("kvp", "g1", "role")
    assert p.returncode == 0 and p.stdout == "db\n", p
    assert "host   role=db" in d.virtctl("kvp", "g1").stdout
    p = d.virtctl("kvp", "g1", "bad/key=1")
    assert p.returncode != 0 and "not valid" in p.stderr, p
    # A new agent (restart) gets the host items again.
    for f in env["kvp"].iterdir():
        f.unlink()
    fake.drop_all()
    wait_hb(c, "g1", 13)
    wait_hb(c, "g1", 2)
    for _ in range(50):
        if (env["kvp"] / "role").exists():
            break
        time.sleep(0.1)
    assert (env["kvp"] / "role").read_text() == "db"

    src = env["tmp"] / "src.bin"
    src.write_bytes(os.urandom(300 * 1024 + 7))
    dest = env["tmp"] / "copied.bin"
    p = d.virtctl("copy-to", "g1", src, dest)
    assert p.returncode == 0, p
    assert dest.read_bytes() == src.read_bytes()
    p = d.virtctl("copy-to", "g1", src, "relative/path")
    assert p.returncode == 2, p


def test_channel_refuses_other_ops_and_garbage(env):
    d, c, fake = env["d"], env["c"], env["fake"]
    fake.target = unix_target(env["agent_sock"])
    wait_hb(c, "g1", 2)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(d.sock))
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"AttachGuestChannel","params":{"Name":"g1"}}\n')
    f = s.makefile("rb")
    line = f.readline()
    assert json.loads(line)["result"]["Stream"] == "guestproto"

    def frame():
        n = struct.unpack(">I", f.read(4))[0]
        return json.loads(f.read(n))

    def send(m):
        b = json.dumps(m).encode()
        s.sendall(struct.pack(">I", len(b)) + b)
    assert frame() == {"id": None, "type": "channel", "ok": True}
    send({"id": 5, "op": "shutdown"})
    r = frame()
    assert r["id"] == 5 and r["ok"] is False and r["errno"] == 1, r
    send({"id": 6, "op": "ping"})
    r = frame()
    assert r["id"] == 6 and r["ok"] is True, r
    s.sendall(struct.pack(">I", 1 << 30))   # over the frame limit: the channel ends
    r = frame()
    assert r["type"] == "channel" and r["ok"] is False, r
    assert f.read(1) == b""
    s.close()
    # The daemon is fine.
    assert heartbeat(c, "g1") == 2


def test_shutdown_asks_the_agent_then_forces(env):
    d, c, fake = env["d"], env["c"], env["fake"]
    fa = FakeAgent()
    fake.target = fa.target
    wait_hb(c, "g1", 2)
    # Not forced: the agent was asked, the spin guest does not stop, the job fails in time.
    t0 = time.time()
    p = d.virtctl("shutdown", "g1", "--timeout", "2", timeout=60)
    assert p.returncode == 1 and "did not shut down" in p.stderr, p
    assert "shutdown" in fa.ops
    assert cs(c, "g1")["EnabledState"] == RUNNING
    # Forced: turned off after the timeout; the job completes when the VM is off.
    p = d.virtctl("shutdown", "g1", "--force", "--timeout", "2", timeout=60)
    assert p.returncode == 0, p
    assert time.time() - t0 < 30
    wait_state(c, "g1", OFF)
    assert heartbeat(c, "g1") == 12
    assert fa.ops.count("shutdown") == 2


def test_request_state_4_without_agent_presses_power_button(env):
    d, c = env["d"], env["c"]
    r = request_state(c, "g1", 4)
    assert "result" in r and r["result"]["ReturnValue"] == 4096, r
    assert "pressed the power button" in d.log() or "power button" in d.log()
    j = wait_job(c, r["result"]["Job"], timeout=90)
    # The spin guest ignores the power button: the job fails after the default 60 s.
    assert j["JobState"] == 10 and "did not shut down" in j["ErrorDescription"], j
    assert cs(c, "g1")["EnabledState"] == RUNNING


def wait_file(path, want, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        if path.exists() and path.read_text() == want:
            return
        time.sleep(0.1)
    raise AssertionError(f"{path}: {path.read_text() if path.exists() else 'absent'!r}, not {want!r}")


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_host_kvp_survive_vmmsd_restart(env, how):
    d, c, fake = env["d"], env["c"], env["fake"]
    fake.target = unix_target(env["agent_sock"])
    wait_hb(c, "g1", 2)
    for kv in ("role=web", "zone=eu-1", "gone=soon"):
        assert d.virtctl("kvp", "g1", kv).returncode == 0
    r = c.call("InvokeMethod", ObjectPath="Msvm_VirtualSystemManagementService", MethodName="RemoveKvpItems",
               Parameters={"TargetSystem": cs_path(c, "g1"), "DataItems": [{"Name": "gone"}]})
    assert "result" in r and r["result"]["ReturnValue"] == 0, r
    wait_file(env["kvp"] / "role", "web")
    stored = json.loads((d.state / "vms" / "g1" / "kvp.json").read_text())
    assert stored == {"role": "web", "zone": "eu-1"}, stored
    for f in env["kvp"].iterdir():
        f.unlink()
    c.close()
    if how == "sigterm":   # d.stop() would also kill the worker
        d.proc.terminate()
        assert d.proc.wait(timeout=20) == 0
    else:
        d.kill9()
    d.start()
    c = env["c"] = d.client()
    wait_state(c, "g1", RUNNING, timeout=10)   # reattached
    out = d.virtctl("kvp", "g1").stdout
    assert "host   role=web" in out and "host   zone=eu-1" in out and "gone" not in out, out
    # The new vmmsd pushes them to the agent when it connects.
    wait_hb(c, "g1", 2)
    wait_file(env["kvp"] / "role", "web")
    wait_file(env["kvp"] / "zone", "eu-1")
    assert not (env["kvp"] / "gone").exists()
    # A corrupt file is reported and left alone; the daemon runs, and changes are refused
    # rather than overwrite it.
    c.close()
    d.kill9()
    bad = d.state / "vms" / "g1" / "kvp.json"
    bad.write_text('{"role": "web", "bad/key": "x"}')
    d.start()
    c = env["c"] = d.client()
    wait_state(c, "g1", RUNNING, timeout=10)
    assert "ignoring its host key-value pairs" in d.log()
    assert "host " not in d.virtctl("kvp", "g1").stdout
    p = d.virtctl("kvp", "g1", "role=db")
    assert p.returncode != 0 and "could not be loaded" in p.stderr, p
    assert bad.read_text() == '{"role": "web", "bad/key": "x"}'
