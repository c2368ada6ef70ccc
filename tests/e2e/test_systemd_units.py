#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""The systemd integration: the units, sysusers.d and tmpfiles.d snippets as `make install`
puts them, checked by systemd's own tools (systemd-analyze verify, systemd-sysusers,
systemd-tmpfiles in a temp root), and the daemon side of the contract they rely on: READY=1
on $NOTIFY_SOCKET (Type=notify) and a listening socket passed in by socket activation.
Run: VMMS_BUILD=build python3 -m pytest tests/e2e/test_systemd_units.py"""
import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.abspath(os.environ.get("VMMS_BUILD", os.path.join(ROOT, "build")))


def unit_settings(path):
    """{(section, key): [values]} of a unit file."""
    out, section = {}, None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                section = line.strip("[]")
                continue
            k, v = line.split("=", 1)
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


class SystemdUnitsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dest = tempfile.mkdtemp(prefix="vmms-install-")
        p = subprocess.run(["make", "-s", "BUILD=" + BUILD, "install", "DESTDIR=" + cls.dest, "PREFIX=/usr"],
                           cwd=ROOT, capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            shutil.rmtree(cls.dest, ignore_errors=True)
            raise AssertionError("make install failed:\n" + p.stdout[-2000:] + p.stderr[-3000:])
        cls.units = os.path.join(cls.dest, "usr/lib/systemd/system")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.dest, ignore_errors=True)

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="vmms-units-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def test_installed_files(self):
        for rel in ("usr/lib/systemd/system/vmmsd.service", "usr/lib/systemd/system/vmmsd.socket",
                    "usr/lib/sysusers.d/vmms.conf", "usr/lib/tmpfiles.d/vmms.conf", "usr/sbin/vmmsd"):
            self.assertTrue(os.path.exists(os.path.join(self.dest, rel)), rel)
        svc = unit_settings(os.path.join(self.units, "vmmsd.service"))
        self.assertEqual(svc[("Service", "Type")], ["notify"])
        self.assertEqual(svc[("Service", "ExecStart")], ["/usr/sbin/vmmsd --foreground"])
        self.assertEqual(svc[("Service", "KillMode")], ["process"])   # workers survive restarts
        self.assertEqual(svc[("Service", "Delegate")], ["yes"])
        sock = unit_settings(os.path.join(self.units, "vmmsd.socket"))
        self.assertEqual(sock[("Socket", "ListenStream")], ["/run/vmms/vmms.sock"])
        self.assertEqual(sock[("Socket", "SocketMode")], ["0660"])
        self.assertEqual(sock[("Socket", "SocketGroup")], ["vmms"])

    def test_systemd_analyze_verify(self):
        """verify checks every directive, that ExecStart is executable and that the man pages in
        Documentation= exist: ExecStart points at the installed binary and MANPATH at the
        installed pages; nothing else is changed."""
        units = os.path.join(self.tmp, "units")
        os.mkdir(units)
        with open(os.path.join(self.units, "vmmsd.service")) as f:
            text = f.read()
        exe = os.path.join(self.dest, "usr/sbin/vmmsd")
        with open(os.path.join(units, "vmmsd.service"), "w") as f:
            f.write(text.replace("ExecStart=/usr/sbin/vmmsd", "ExecStart=" + exe))
        shutil.copy(os.path.join(self.units, "vmmsd.socket"), units)
        env = dict(os.environ, MANPATH=os.path.join(self.dest, "usr/share/man"))
        p = subprocess.run(["systemd-analyze", "verify", os.path.join(units, "vmmsd.service"),
                            os.path.join(units, "vmmsd.socket")], capture_output=True, text=True, env=env,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stderr.strip(), "", "warnings from systemd-analyze verify")
        # The check has teeth: a missing ExecStart binary fails it.
        with open(os.path.join(units, "vmmsd.service"), "w") as f:
            f.write(text.replace("ExecStart=/usr/sbin/vmmsd", "ExecStart=" + exe + ".missing"))
        p = subprocess.run(["systemd-analyze", "verify", os.path.join(units, "vmmsd.service")],
                           capture_output=True, text=True, env=env, timeout=120)
        self.assertNotEqual(p.returncode, 0)

    def test_sysusers_and_tmpfiles(self):
        root = os.path.join(self.tmp, "root")
        os.makedirs(os.path.join(root, "etc"))
        p = subprocess.run(["systemd-sysusers", "--root=" + root,
                            os.path.join(self.dest, "usr/lib/sysusers.d/vmms.conf")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(os.path.join(root, "etc/group")) as f:
            self.assertTrue(any(l.startswith("vmms:") for l in f), "group vmms not created")
        p = subprocess.run(["systemd-tmpfiles", "--root=" + root, "--create",
                            os.path.join(self.dest, "usr/lib/tmpfiles.d/vmms.conf")],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        for d, mode in (("run/vmms", 0o755), ("var/lib/vmms", 0o700), ("etc/vmms", 0o755)):
            st = os.stat(os.path.join(root, d))
            self.assertTrue(stat.S_ISDIR(st.st_mode), d)
            self.assertEqual(stat.S_IMODE(st.st_mode), mode, d)

    def test_notify_and_socket_activation(self):
        """What Type=notify and vmmsd.socket rely on, with the daemon itself: the socket comes
        in as fd 3 (systemd-socket-activate sets LISTEN_FDS/LISTEN_PID like systemd does) and
        READY=1 arrives on $NOTIFY_SOCKET once it serves."""
        state, run = os.path.join(self.tmp, "state"), os.path.join(self.tmp, "run")
        os.mkdir(run)
        sock_path = os.path.join(self.tmp, "activated.sock")
        notify_path = os.path.join(self.tmp, "notify")
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(notify_path)
        notify.settimeout(20)
        conf = os.path.join(self.tmp, "vmmsd.conf")
        with open(conf, "w") as f:
            f.write("socket_group = vmms-e2e-nonexistent\n")
        log = open(os.path.join(self.tmp, "vmmsd.log"), "wb")
        # systemd-socket-activate passes on only the variables named with -E.
        proc = subprocess.Popen(["systemd-socket-activate", "-l", sock_path, "-E", "NOTIFY_SOCKET=" + notify_path,
                                 os.path.join(self.dest, "usr/sbin/vmmsd"), "--foreground", "--config", conf,
                                 "--state-dir", state, "--runtime-dir", run],
                                stderr=log)
        try:
            # systemd-socket-activate listens first and starts vmmsd on the first connection.
            for _ in range(100):
                if os.path.exists(sock_path):
                    break
                time.sleep(0.05)
            c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            c.settimeout(20)
            c.connect(sock_path)
            c.sendall(b'{"jsonrpc":"2.0","id":1,"method":"EnumerateInstances","params":{"ClassName":"Msvm_ComputerSystem"}}\n')
            buf = b""
            while b"\n" not in buf:
                d = c.recv(65536)
                self.assertTrue(d, "vmmsd closed the activated connection")
                buf += d
            self.assertEqual(json.loads(buf.split(b"\n")[0])["result"], [])
            c.close()
            msgs = []
            while not any(b"READY=1" in m for m in msgs):
                msgs.append(notify.recv(4096))
            # vmmsd did not make a socket of its own: it served the one it was given.
            self.assertFalse(os.path.exists(os.path.join(run, "vmms.sock")))
            proc.terminate()
            self.assertEqual(proc.wait(timeout=20), 0)
            self.assertIn(b"STOPPING=1", notify.recv(4096))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()
            notify.close()


if __name__ == "__main__":
    unittest.main()
