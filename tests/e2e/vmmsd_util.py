# SPDX-License-Identifier: GPL-2.0-only
"""Helpers for end-to-end tests that run a private vmmsd with real workers: the daemon in a
temp dir, a JSON-RPC client, ring-3 test guest definitions and waiting for states and jobs."""
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
CS_EVENTS = "SELECT * FROM __InstanceModificationEvent WHERE TargetInstance ISA 'Msvm_ComputerSystem'"
RUNNING, OFF, PAUSED, STARTING, STOPPING, PAUSING, RESUMING = 2, 3, 9, 10, 32774, 32776, 32777


def build_dir():
    return pathlib.Path(os.environ.get("VMMS_BUILD", ROOT / "build")).resolve()


def guest_elf(name):
    """A ring-3 test guest (tests/guests), built by `make test-guests` into BUILD/guests."""
    return build_dir() / "guests" / f"{name}.elf"


def guest_xml(name, elf, memory_mib=32, vcpus=1, extra=""):
    return (f"<domain type='kvm'><name>{name}</name><memory unit='MiB'>{memory_mib}</memory>"
            f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64'>hvm</type><kernel>{elf}</kernel></os>"
            "<on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>"
            f"<devices><serial type='stdio'><target port='0'/></serial>{extra}</devices></domain>")


class Client:
    def __init__(self, path, timeout=30):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.buf = b""
        self.next_id = 0
        self.events = []

    def read_msg(self):
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                return None
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def call(self, method, **params):
        """The full response (result or error); notifications met on the way are kept."""
        self.next_id += 1
        self.sock.sendall((json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                       "params": params}) + "\n").encode())
        while True:
            m = self.read_msg()
            if m is None:
                raise ConnectionError("vmmsd closed the connection")
            if m.get("method") == "Event":
                self.events.append(m["params"]["Event"])
                continue
            if m.get("id") == self.next_id:
                return m

    def result(self, method, **params):
        r = self.call(method, **params)
        if "error" in r:
            raise RuntimeError(f"{method}: {r['error']}")
        return r["result"]

    def next_event(self, timeout=10):
        if self.events:
            return self.events.pop(0)
        self.sock.settimeout(timeout)
        try:
            while True:
                m = self.read_msg()
                if m is None:
                    return None
                if m.get("method") == "Event":
                    return m["params"]["Event"]
        except (TimeoutError, socket.timeout):
            return None
        finally:
            self.sock.settimeout(30)

    def close(self):
        self.sock.close()


class Vmmsd:
    """A private vmmsd: its own state and runtime directories and config. conf, when given, is
    the whole config file instead of the default (worker uids, this build's worker, extra_conf)."""

    def __init__(self, tmp, uid_min=200000, uid_max=200999, extra_conf="", conf=None):
        self.dir = pathlib.Path(tmp)
        self.state = self.dir / "state"
        self.run = self.dir / "run"
        self.sock = self.run / "vmms.sock"
        self.conf = self.dir / "vmmsd.conf"
        if conf is None:
            conf = (f"socket_group = vmms-e2e-nonexistent\nworker_uid_min = {uid_min}\n"
                    f"worker_uid_max = {uid_max}\nworker_path = {build_dir() / 'vmms-worker'}\n"
                    f"max_clients = 200\n{extra_conf}")
        self.conf.write_text(conf)
        self.log_path = self.dir / "vmmsd.log"
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([str(build_dir() / "vmmsd"), "--foreground", "--config", str(self.conf),
                                      "--state-dir", str(self.state), "--runtime-dir", str(self.run)],
                                     stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        for _ in range(400):
            if self.sock.exists():
                try:
                    Client(self.sock).close()
                    return self
                except OSError:
                    pass
            if self.proc.poll() is not None:
                raise RuntimeError(f"vmmsd exited with {self.proc.returncode}: {self.log()}")
            time.sleep(0.025)
        raise RuntimeError("vmmsd did not start listening")

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        """SIGTERM; then turn off every VM still running so no worker outlives the test.
        Returns vmmsd's exit status after the SIGTERM, or None where it was not running."""
        status = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            status = self.proc.wait(timeout=20)
        for pidf in self.run.glob("vms/*/pid"):
            try:
                os.kill(int(pidf.read_text()), signal.SIGKILL)
            except (OSError, ValueError):
                pass
        return status

    def client(self):
        return Client(self.sock)

    def virtctl(self, *args, timeout=60):
        return subprocess.run([str(build_dir() / "virtctl"), "--socket", str(self.sock)] + [str(a) for a in args],
                              capture_output=True, text=True, timeout=timeout)

    def worker_pid(self, name):
        return int((self.run / "vms" / name / "pid").read_text())


def spin_vmmsd(tmp_path):
    """The body of a pytest fixture (`yield from spin_vmmsd(tmp_path)`): a default private vmmsd
    for tests that run the spin guest, stopped afterwards."""
    import pytest

    if not (build_dir() / "vmmsd").exists() or not guest_elf("spin").exists():
        pytest.fail(f"build {build_dir()} first: make all test-guests")
    d = Vmmsd(tmp_path).start()
    yield d
    d.stop()


class PrivateVmmsdCase:
    """A mixin for unittest.TestCase: a private vmmsd per test, with the class's CONF as its whole
    config file, in a temp dir named after PREFIX (self.dir, self.state, self.run_dir, self.sock,
    self.conf as strings). stop_daemon() fails the test unless vmmsd exits 0 on SIGTERM."""
    CONF = ""
    PREFIX = "vmmsd-e2e-"

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix=self.PREFIX)
        self.vmmsd = Vmmsd(self.dir, conf=self.CONF)
        self.state = str(self.vmmsd.state)
        self.run_dir = str(self.vmmsd.run)
        self.sock = str(self.vmmsd.sock)
        self.conf = str(self.vmmsd.conf)
        self.start_daemon()

    def tearDown(self):
        self.stop_daemon()
        shutil.rmtree(self.dir, ignore_errors=True)

    def start_daemon(self):
        self.vmmsd.start()

    def stop_daemon(self):
        status = self.vmmsd.stop()
        if status is not None:
            self.assertEqual(status, 0, "vmmsd did not exit cleanly on SIGTERM")


def cs_path(c, name):
    r = c.result("ExecQuery", Query=f"SELECT * FROM Msvm_ComputerSystem WHERE ElementName = '{name}'")
    assert len(r) == 1, r
    return r[0]["__PATH"]


def cs(c, name):
    return c.result("ExecQuery", Query=f"SELECT * FROM Msvm_ComputerSystem WHERE ElementName = '{name}'")[0]


def define(c, xml):
    r = c.result("InvokeMethod", ObjectPath="Msvm_VirtualSystemManagementService", MethodName="DefineSystem",
                 Parameters={"SystemDefinition": xml})
    return r


def request_state(c, name, state):
    """Full InvokeMethod response of RequestStateChange."""
    return c.call("InvokeMethod", ObjectPath=cs_path(c, name), MethodName="RequestStateChange",
                  Parameters={"RequestedState": state})


def wait_job(c, job_path, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        j = c.result("GetInstance", ObjectPath=job_path)
        if j["JobState"] != 4:
            return j
        time.sleep(0.02)
    raise TimeoutError(f"job {job_path} still running")


def wait_state(c, name, state, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        o = cs(c, name)
        if o["EnabledState"] == state:
            return o
        time.sleep(0.02)
    raise TimeoutError(f"VM {name} is {cs(c, name)['EnabledState']}, not {state}")


def proc_status(pid):
    out = {}
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def cpu_ticks(pid):
    f = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


class Report:
    """PASS/FAIL lines of a script that runs where KVM is (inside tests/kvmhost/run); the
    pytest side asserts on them. failures counts the FAIL lines."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.failures = 0

    def say(self, msg):
        print(f"{self.prefix}: {msg}", flush=True)

    def check(self, name, ok, detail=""):
        if ok:
            self.say(f"PASS {name}")
        else:
            self.failures += 1
            self.say(f"FAIL {name}: {detail}"[:3000])


def heartbeat(c, vm):
    """The VM's Msvm_HeartbeatComponent OperationalStatus (2 OK, 12 No Contact, 13 Lost)."""
    r = [x for x in c.result("ExecQuery", Query="SELECT * FROM Msvm_HeartbeatComponent") if x["VMName"] == vm]
    return r[0]["OperationalStatus"][0] if r else None


def wait_heartbeat(c, vm, want, timeout, give_up_when_off=False):
    end = time.time() + timeout
    while time.time() < end:
        if heartbeat(c, vm) == want:
            return True
        if give_up_when_off and cs(c, vm)["EnabledState"] == OFF:
            return False
        time.sleep(0.5)
    return False
