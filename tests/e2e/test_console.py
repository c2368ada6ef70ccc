#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""End-to-end test of VM consoles: AttachConsole on the management socket (raw stream after the
reply, one writer, many readers, --force, replay of the log) and `virtctl console` driven
through pipes, against a private vmmsd; then a real worker (the uart test guest) started by
vmmsd, its output followed live through virtctl and kept in the console log.
Run: VMMS_BUILD=build python3 -m pytest tests/e2e/test_console.py"""
import json
import os
import pty
import socket
import subprocess
import select
import termios
import time
import unittest

from vmmsd_util import PrivateVmmsdCase, build_dir

BUILD = str(build_dir())

DOMAIN = """<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>{kernel}</kernel></os>
  <on_poweroff>destroy</on_poweroff><on_reboot>destroy</on_reboot><on_crash>destroy</on_crash>
  <devices><serial type='pty'><target port='0'/></serial></devices>
</domain>
"""


class Conn:
    """One management connection; after AttachConsole it carries raw console bytes."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""

    def call(self, method, **params):
        self.sock.sendall((json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                           + "\n").encode())
        while b"\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("vmmsd closed the connection")
            self.buf += d
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def read_until(self, needle, timeout=10):
        """Raw bytes (including any that came with the reply) until needle, or what came."""
        end = time.time() + timeout
        while needle not in self.buf and time.time() < end:
            self.sock.settimeout(max(0.05, end - time.time()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            self.buf += d
        return self.buf

    def at_eof(self, timeout=5):
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class ConsoleTest(PrivateVmmsdCase, unittest.TestCase):
    CONF = "socket_group = vmms-e2e-nonexistent\nconsole_log_max = 65536\nconsole_log_keep = 2\n"
    PREFIX = "vmmsd-console-"

    def setUp(self):
        self.conns = []
        super().setUp()

    def tearDown(self):
        for c in self.conns:
            c.close()
        super().tearDown()

    def conn(self):
        c = Conn(self.sock)
        self.conns.append(c)
        return c

    def virtctl(self, *args, stdin=b"", timeout=30):
        return subprocess.run([os.path.join(BUILD, "virtctl"), "--socket", self.sock] + list(args),
                              input=stdin, capture_output=True, timeout=timeout)

    def define(self, name, kernel="/nonexistent/kernel"):
        path = os.path.join(self.dir, name + ".xml")
        with open(path, "w") as f:
            f.write(DOMAIN.format(name=name, kernel=kernel))
        p = self.virtctl("define", path)
        self.assertEqual(p.returncode, 0, p.stderr)
        return os.path.join(self.state, "vms", name)

    # ---- the protocol, no worker needed -----------------------------------------------------

    def test_attach_errors_keep_json(self):
        self.define("vm1")
        c = self.conn()
        r = c.call("AttachConsole", Name="nosuch")
        self.assertEqual(r["error"]["data"]["name"], "NotFound", r)
        r = c.call("AttachConsole", Name="vm1", Mode="readwrite")
        self.assertEqual(r["error"]["data"]["name"], "InvalidParams", r)
        r = c.call("AttachConsole", Name="vm1", Force="yes")
        self.assertEqual(r["error"]["data"]["name"], "InvalidParams", r)
        r = c.call("AttachConsole", Name="vm1", Color=True)
        self.assertEqual(r["error"]["data"]["name"], "InvalidParams", r)
        # still a JSON connection after every refusal
        r = c.call("EnumerateInstances", ClassName="Msvm_ComputerSystem")
        self.assertEqual(len(r["result"]), 1)

    def test_one_writer_many_readers_force(self):
        self.define("vm1")
        w1 = self.conn()
        r = w1.call("AttachConsole", Name="vm1")
        self.assertEqual(r["result"]["Stream"], "raw")
        self.assertEqual(r["result"]["Mode"], "write")
        w2 = self.conn()
        r = w2.call("AttachConsole", Name="vm1", Mode="write")
        self.assertEqual(r["error"]["data"]["name"], "InvalidStateTransition", r)
        self.assertIn("uid %d pid" % os.getuid(), r["error"]["message"])   # names the holder
        self.assertIn("--force", r["error"]["message"])
        readers = [self.conn() for _ in range(3)]
        for rd in readers:
            self.assertEqual(rd.call("AttachConsole", Name="vm1", Mode="read")["result"]["Mode"], "read")
        # virtctl is refused the same way, with exit status 1 and the reason
        p = self.virtctl("console", "vm1", stdin=b"")
        self.assertEqual(p.returncode, 1, p)
        self.assertIn(b"already attached for writing", p.stderr)
        # --force takes over: the old writer is told and disconnected
        w3 = self.conn()
        self.assertIn("result", w3.call("AttachConsole", Name="vm1", Force=True))
        self.assertTrue(w1.at_eof())
        self.assertIn(b"taken over by uid", w1.buf)
        # the readers are untouched
        for rd in readers:
            self.assertFalse(rd.at_eof(timeout=0.2))

    def test_replay_from_log_and_virtctl_pipes(self):
        vmdir = self.define("vm1")
        # output of an earlier run, e.g. before a vmmsd restart
        with open(os.path.join(vmdir, "console.log.1"), "wb") as f:
            f.write(b"old-rotated-line\n")
        with open(os.path.join(vmdir, "console.log"), "wb") as f:
            f.write(b"x" * 5000 + b"\nlast words of the guest\n")
        # a fresh daemon reads the replay from the files
        self.stop_daemon()
        self.start_daemon()
        c = self.conn()
        self.assertIn("result", c.call("AttachConsole", Name="vm1", Mode="read"))
        got = c.read_until(b"last words of the guest\n")
        self.assertTrue(got.endswith(b"last words of the guest\n"), got[-100:])
        self.assertEqual(len(got), 4096)   # the tail only
        # virtctl, stdin a pipe: the replay goes to stdout, then ^] detaches (sent only once
        # the replay arrived: the two race otherwise)
        p = subprocess.Popen([os.path.join(BUILD, "virtctl"), "--socket", self.sock, "console", "vm1",
                              "--read-only"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out = b""
        while not out.endswith(b"last words of the guest\n"):
            r, _, _ = select.select([p.stdout], [], [], 10)
            self.assertTrue(r, "no replay from virtctl: %r" % out[-100:])
            chunk = os.read(p.stdout.fileno(), 65536)
            self.assertTrue(chunk, "virtctl ended before the replay: %r" % out[-100:])
            out += chunk
        rest, err = p.communicate(input=b"\x1d", timeout=10)
        self.assertEqual(p.returncode, 0, err)
        self.assertIn(b"Connected to VM vm1 read-only (escape character is ^])", err)
        self.assertIn(b"Detached from VM vm1", err)
        self.assertEqual(rest, b"")
        # a writer typing to a VM that is not running: accepted, nothing breaks
        p = self.virtctl("console", "vm1", stdin=b"typed\x1d")
        self.assertEqual(p.returncode, 0, p)
        self.assertIn(b"Connected to VM vm1 (escape", p.stderr)
        # usage errors
        self.assertEqual(self.virtctl("console").returncode, 2)
        self.assertEqual(self.virtctl("console", "vm1", "--read-only", "--force").returncode, 2)
        self.assertEqual(self.virtctl("console", "nosuch", stdin=b"").returncode, 3)
        # undefining a VM with console logs works, and so does defining the name again
        self.assertEqual(self.virtctl("undefine", "vm1").returncode, 0)
        self.define("vm1")
        self.assertEqual(self.virtctl("undefine", "vm1").returncode, 0)

    def test_terminal_raw_mode_and_escape(self):
        """On a terminal: raw mode while attached (keys such as ^C go to the guest), ^] detaches
        and the terminal settings come back."""
        self.define("vm1")
        master, slave = pty.openpty()
        before = termios.tcgetattr(slave)
        self.assertTrue(before[3] & termios.ICANON)
        p = subprocess.Popen([os.path.join(BUILD, "virtctl"), "--socket", self.sock, "console", "vm1"],
                             stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            err = b""
            while b"escape character is ^]" not in err:
                r, _, _ = select.select([p.stderr], [], [], 10)
                self.assertTrue(r, "virtctl did not connect: %r" % err)
                err += os.read(p.stderr.fileno(), 4096)
            raw = None
            for _ in range(100):   # the tty is switched right after the banner
                raw = termios.tcgetattr(slave)
                if not raw[3] & termios.ICANON:
                    break
                time.sleep(0.02)
            self.assertFalse(raw[3] & (termios.ICANON | termios.ECHO | termios.ISIG))
            os.write(master, b"\x03")       # ^C is a key for the guest, not a signal
            time.sleep(0.2)
            self.assertIsNone(p.poll())
            os.write(master, b"\x1d")
            self.assertEqual(p.wait(timeout=10), 0)
            self.assertIn(b"Detached from VM vm1", p.stderr.read())
            after = termios.tcgetattr(slave)
            self.assertEqual(after[3], before[3])
            self.assertEqual(after[0], before[0])
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)
            os.close(slave)

    # Undefining removes the VM directory with its console logs, so the same uuid can be
    # defined and undefined again (this once failed with "Directory not empty").
    def test_undefine_twice_with_console_log_and_uuid(self):
        xml = os.path.join(self.dir, "u1.xml")
        with open(xml, "w") as f:
            f.write(DOMAIN.format(name="u1", kernel="/nonexistent/kernel").replace(
                "<name>u1</name>", "<name>u1</name><uuid>12345678-1234-1234-1234-123456789abc</uuid>"))
        for _ in range(2):
            self.assertEqual(self.virtctl("define", xml).returncode, 0)
            with open(os.path.join(self.state, "vms", "u1", "console.log"), "wb") as f:
                f.write(b"guest output\n")
            p = self.virtctl("undefine", "u1")
            self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(sorted(os.listdir(os.path.join(self.state, "vms"))), [])

    def test_bad_console_config_refused(self):
        self.stop_daemon()
        for bad in ("console_log_max = 12\n", "console_log_keep = 1000\n", "console_log_max = lots\n"):
            with open(self.conf, "w") as f:
                f.write(bad)
            p = subprocess.run([os.path.join(BUILD, "vmmsd"), "--foreground", "--config", self.conf,
                                "--state-dir", self.state, "--runtime-dir", self.run_dir],
                               capture_output=True, timeout=10)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn(b"console_log_", p.stderr)

    # ---- a real worker ------------------------------------------------------------------------

    def test_real_worker_output(self):
        elf = os.path.join(BUILD, "guests", "uart.elf")
        if not os.path.exists(elf):
            self.fail("%s missing: run 'make BUILD=%s test-guests'" % (elf, BUILD))
        vmdir = self.define("uart1", kernel=elf)
        # attach before the start: the whole boot output arrives live
        reader = subprocess.Popen([os.path.join(BUILD, "virtctl"), "--socket", self.sock, "console", "uart1",
                                   "--read-only"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        try:
            raw = self.conn()
            self.assertIn("result", raw.call("AttachConsole", Name="uart1", Mode="read"))
            p = self.virtctl("start", "uart1")
            if p.returncode != 0 and b"not implemented" in p.stderr:
                self.skipTest("vmmsd cannot start workers in this build: " + p.stderr.decode().strip())
            self.assertEqual(p.returncode, 0, p)
            got = raw.read_until(b"DONE uart failures=", timeout=60)
            self.assertIn(b"vmms test guest uart: hello from ring 3", got,
                          "no guest output; the VM: " + self.virtctl("info", "uart1").stdout.decode())
            # the guest ends; its console stream ends with it (at_eof keeps what comes before)
            self.assertTrue(raw.at_eof(timeout=30))
            self.assertIn(b"DONE uart failures=0", raw.buf)
            out, err = reader.communicate(timeout=30)
            self.assertEqual(reader.returncode, 0, err)
            self.assertIn(b"DONE uart failures=0", out)
            self.assertIn(b"Disconnected from VM uart1", err)
        finally:
            if reader.poll() is None:
                reader.kill()
                reader.wait()
        with open(os.path.join(vmdir, "console.log"), "rb") as f:
            log = f.read()
        self.assertIn(b"hello from ring 3", log)
        self.assertIn(b"DONE uart failures=0", log)


if __name__ == "__main__":
    unittest.main()
