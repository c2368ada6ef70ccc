#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""End-to-end test of vmmsd's management API: a private daemon in a temp dir, driven through
virtctl and raw JSON-RPC on the socket. Needs no /dev/kvm (no VM is started).
Run: python3 tests/e2e/test_vmmsd_api.py [BUILD_DIR]  (default build)."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

import vmmsd_util

BUILD = str(vmmsd_util.build_dir())

DOMAIN = """<domain type='kvm'>
  <name>{name}</name>
  <memory unit='MiB'>128</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64'>hvm</type><kernel>/nonexistent/vmlinuz</kernel><cmdline>console=ttyS0</cmdline></os>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='raw'/><source file='/tmp/{name}.img'/><target dev='vda' bus='virtio'/></disk>
    <serial type='file'><source path='/tmp/{name}.log'/></serial>
  </devices>
</domain>
"""


class Client(vmmsd_util.Client):
    """vmmsd_util's client, but call() returns None where vmmsd closes the connection (a refused
    client) and keeps no events, and send_raw() writes any bytes."""

    def __init__(self, path):
        super().__init__(path, timeout=10)

    def send_raw(self, data):
        self.sock.sendall(data)

    def call(self, method, **params):
        self.next_id += 1
        self.send_raw((json.dumps({"jsonrpc": "2.0", "id": self.next_id, "method": method,
                                   "params": params}) + "\n").encode())
        while True:
            m = self.read_msg()
            if m is None or m.get("id") == self.next_id:
                return m


class VmmsdApiTest(vmmsd_util.PrivateVmmsdCase, unittest.TestCase):
    CONF = "# test\nmax_clients = 40\nsocket_group = vmms-e2e-nonexistent\nclient_queue_max = 65536\n"

    def virtctl(self, *args, check=None):
        p = subprocess.run([os.path.join(BUILD, "virtctl"), "--socket", self.sock] + list(args),
                           capture_output=True, text=True, timeout=30)
        if check is not None:
            self.assertEqual(p.returncode, check, "virtctl %s: %s%s" % (args, p.stdout, p.stderr))
        return p

    def write_domain(self, name):
        path = os.path.join(self.dir, name + ".xml")
        with open(path, "w") as f:
            f.write(DOMAIN.format(name=name))
        return path

    def test_define_list_query_restart(self):
        out = self.virtctl("define", self.write_domain("web1"), check=0).stdout
        self.assertIn("Msvm_ComputerSystem.Name=", out)
        c = Client(self.sock)
        r = c.call("InvokeMethod", ObjectPath="Msvm_VirtualSystemManagementService", MethodName="DefineSystem",
                   Parameters={"SystemDefinition": DOMAIN.format(name="db1")})
        self.assertEqual(r["result"]["ReturnValue"], 0, r)
        # duplicate name: AlreadyExists, nothing changes
        r = c.call("InvokeMethod", ObjectPath="Msvm_VirtualSystemManagementService", MethodName="DefineSystem",
                   Parameters={"SystemDefinition": DOMAIN.format(name="db1")})
        self.assertEqual(r["error"]["data"]["name"], "AlreadyExists")
        # a definition the schema rejects
        r = c.call("InvokeMethod", ObjectPath="Msvm_VirtualSystemManagementService", MethodName="DefineSystem",
                   Parameters={"SystemDefinition": "<domain type='kvm'><bogus/></domain>"})
        self.assertEqual(r["error"]["data"]["name"], "InvalidParameter")
        lst = self.virtctl("list", check=0).stdout.splitlines()
        self.assertRegex(lst[0], r"^\s*Id\s+Name\s+State")
        self.assertTrue(any("web1" in l and "shut off" in l for l in lst), lst)
        self.assertTrue(any("db1" in l and "shut off" in l for l in lst), lst)
        r = c.call("ExecQuery", Query="SELECT ElementName, EnabledState FROM Msvm_ComputerSystem "
                                      "WHERE ElementName LIKE 'w%' AND EnabledState = 3")
        self.assertEqual([x["ElementName"] for x in r["result"]], ["web1"])
        q = json.loads(self.virtctl("-o", "json", "query", "SELECT * FROM Msvm_MemorySettingData", check=0).stdout)
        self.assertEqual(sorted(x["VirtualQuantity"] for x in q), [128, 128])
        self.assertEqual(self.virtctl("query", "SELECT FROM", check=1).returncode, 1)
        # state changes: invalid transition is refused; a start whose kernel is missing fails
        # its job, and virtctl reports the job's error naming the file
        p = self.virtctl("pause", "web1", check=1)
        self.assertIn("InvalidStateTransition", p.stderr)
        p = self.virtctl("start", "web1", check=1)
        self.assertIn("/nonexistent/vmlinuz", p.stderr)
        self.virtctl("info", "nosuchvm", check=3)
        info = self.virtctl("info", "web1", check=0).stdout
        self.assertIn("CPUs", info)
        c.close()
        self.stop_daemon()
        self.start_daemon()
        lst = self.virtctl("list", check=0).stdout
        self.assertIn("web1", lst)
        self.assertIn("db1", lst)
        self.virtctl("undefine", "db1", check=0)
        self.assertNotIn("db1", self.virtctl("list", check=0).stdout)
        self.assertFalse(os.path.exists(os.path.join(self.state, "vms", "db1")))

    def test_bad_input_keeps_serving(self):
        c = Client(self.sock)
        c.send_raw(b"{not json\n")
        self.assertEqual(c.read_msg()["error"]["code"], -32700)
        c.send_raw(b"[1,2]\n")
        self.assertEqual(c.read_msg()["error"]["code"], -32600)
        r = c.call("NoSuchMethod")
        self.assertEqual(r["error"]["code"], -32601)
        r = c.call("GetInstance", ObjectPath="Msvm_ComputerSystem.Name=unquoted")
        self.assertEqual(r["error"]["data"]["name"], "InvalidObjectPath")
        r = c.call("GetInstance", ObjectPath='Msvm_ComputerSystem.Name="nope"')
        self.assertEqual(r["error"]["data"]["name"], "NotFound")
        r = c.call("ExecQuery", Query="SELECT * FROM Msvm_ComputerSystem WHERE (((")
        self.assertEqual(r["error"]["data"]["name"], "InvalidQuery")
        self.assertIn("column", r["error"]["message"])
        # a huge line: one error, then the connection is closed
        big = Client(self.sock)
        try:
            big.send_raw(b"x" * (2 << 20) + b"\n")
        except OSError:
            pass
        m = big.read_msg()
        self.assertIsNotNone(m)
        self.assertEqual(m["error"]["data"]["name"], "InvalidRequest")
        self.assertIsNone(big.read_msg())
        big.close()
        # the first connection still works
        self.assertIn("result", c.call("EnumerateClasses"))
        c.close()

    def test_events_and_many_clients(self):
        w = Client(self.sock)
        r = w.call("Subscribe", Query="SELECT * FROM __InstanceCreationEvent WITHIN 1 "
                                      "WHERE TargetInstance ISA 'Msvm_ComputerSystem'")
        sub = r["result"]["SubscriptionId"]
        d = Client(self.sock)
        d.call("InvokeMethod", ObjectPath="Msvm_VirtualSystemManagementService", MethodName="DefineSystem",
               Parameters={"SystemDefinition": DOMAIN.format(name="ev1")})
        ev = w.read_msg()
        self.assertEqual(ev["method"], "Event")
        self.assertEqual(ev["params"]["SubscriptionId"], sub)
        self.assertEqual(ev["params"]["Event"]["TargetInstance"]["ElementName"], "ev1")
        self.assertIn("result", w.call("Unsubscribe", SubscriptionId=sub))
        results = []

        def worker(i):
            try:
                cl = Client(self.sock)
                for _ in range(10):
                    r = cl.call("ExecQuery", Query="SELECT Name FROM Msvm_ComputerSystem")
                    results.append(len(r["result"]))
                cl.close()
            except Exception as e:  # noqa: BLE001 - recorded and asserted below
                results.append(repr(e))

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(30)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(results, [1] * 300)
        # over max_clients: refused with LimitExceeded
        extra = [Client(self.sock) for _ in range(40)]
        refused = [x for x in (e.call("EnumerateClasses") for e in extra) if x is None or "error" in x]
        self.assertGreater(len(refused), 0)
        for e in extra:
            e.close()
        d.close()
        w.close()

    def test_client_that_does_not_read_is_dropped(self):
        slow = Client(self.sock)
        slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        req = (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "EnumerateClasses"}) + "\n").encode()
        try:
            for _ in range(400):
                slow.send_raw(req)
        except OSError:
            pass  # already dropped
        other = Client(self.sock)
        t0 = time.monotonic()
        self.assertIn("result", other.call("EnumerateClasses"))
        self.assertLess(time.monotonic() - t0, 5)
        got = 0
        with self.assertRaises((OSError, TypeError, AssertionError)):
            while True:
                m = slow.read_msg()
                assert m is not None
                got += 1
        self.assertLess(got, 400)
        slow.close()
        other.close()

    def test_access_denied_for_other_users(self):
        if os.geteuid() != 0:
            self.skipTest("needs root to act as another uid")
        os.chmod(self.dir, 0o755)
        os.chmod(self.run_dir, 0o755)
        os.chmod(self.sock, 0o666)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.setgid(65534)
                os.setuid(65534)
                c = Client(self.sock)
                m = c.read_msg()
                code = 0 if m and m["error"]["data"]["name"] == "AccessDenied" else 1
            finally:
                os._exit(code)
        _, st = os.waitpid(pid, 0)
        self.assertEqual(os.waitstatus_to_exitcode(st), 0)
        self.assertIn("result", Client(self.sock).call("EnumerateClasses"))


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        os.environ["VMMS_BUILD"] = sys.argv.pop(1)
        BUILD = str(vmmsd_util.build_dir())
    unittest.main(verbosity=2)
