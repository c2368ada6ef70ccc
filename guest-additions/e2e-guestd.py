#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""End-to-end check of vmms-guestd in a real Linux guest (NOT yet part of tests/e2e).

Waiting on the worker side of virtio-vsock: when this was written devices/virtio/vsock.c and
worker/vsock_host.c existed but vmms-worker had no option to open the per-VM vsock Unix socket
in the foreground. Once it has, set WORKER_VSOCK_ARGS below to that option, run this through the
nested KVM host, and move it to tests/e2e/test_guestd.py as pytest functions:

    make BUILD=build guest-image      # the initramfs then carries build/vmms-guestd
    tests/kvmhost/run -- python3 guest-additions/e2e-guestd.py build

It boots the bundled guest with a virtio-vsock device and a virtio disk, talks to the agent
through the worker's vsock socket (CONNECT 5150), and prints one "PASS name" / "FAIL name: why"
line per check; the exit status is the number of failures.
"""
import base64
import json
import os
import pathlib
import socket
import struct
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
PORT = 5150
# The worker option that opens the VM's vsock Unix socket (to be confirmed with the worker).
WORKER_VSOCK_ARGS = ["--vsock-socket", "{sock}"]


class Agent:
    def __init__(self, sock_path, timeout=60):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.s.connect(sock_path)
                self.s.sendall(b"CONNECT %d\n" % PORT)
                line = b""
                while not line.endswith(b"\n"):
                    c = self.s.recv(1)
                    if not c:
                        raise ConnectionError("closed")
                    line += c
                if not line.startswith(b"OK"):
                    raise ConnectionError(line.decode(errors="replace"))
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise
                time.sleep(1)
        self.s.settimeout(120)
        self.next_id = 1

    def send(self, msg):
        body = json.dumps(msg).encode()
        self.s.sendall(struct.pack(">I", len(body)) + body)

    def recv(self):
        def exact(n):
            b = b""
            while len(b) < n:
                c = self.s.recv(n - len(b))
                if not c:
                    raise ConnectionError("agent closed the connection")
                b += c
            return b
        n = struct.unpack(">I", exact(4))[0]
        return json.loads(exact(n))

    def call(self, op, **fields):
        i = self.next_id
        self.next_id += 1
        self.send(dict(id=i, op=op, **fields))
        out = {"stdout": b"", "stderr": b""}
        while True:
            m = self.recv()
            if m.get("id") != i:
                continue
            if m["type"] in out:
                out[m["type"]] += base64.b64decode(m["data"])
            elif m["type"] == "reply":
                return m, out


def main():
    build = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "build").resolve()
    work = build / "e2e-work"
    work.mkdir(parents=True, exist_ok=True)
    sock = str(work / "guestd.vsock")
    disk = work / "guestd.img"
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    subprocess.run(["/sbin/mke2fs", "-q", "-F", "-t", "ext4", str(disk)], check=True)
    guest = build / "guest"
    xml = (f"<domain type='kvm'><name>guestd</name><memory unit='MiB'>256</memory><vcpu>2</vcpu>"
           f"<os><type arch='x86_64'>hvm</type><kernel>{guest}/bzImage</kernel>"
           f"<initrd>{guest}/initramfs.cpio.gz</initrd><cmdline>console=ttyS0 quiet</cmdline></os>"
           f"<devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>"
           f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk>"
           f"<vsock model='virtio'><cid auto='no' address='3'/></vsock>"
           f"<serial type='file'><source path='{work}/guestd.console'/><target port='0'/></serial>"
           f"</devices></domain>")
    cfg = work / "guestd.xml"
    cfg.write_text(xml)
    worker = subprocess.Popen([str(build / "vmms-worker"), "--config", str(cfg)] +
                              [a.format(sock=sock) for a in WORKER_VSOCK_ARGS])
    failures = 0

    def check(name, cond, why=""):
        nonlocal failures
        print(("PASS " if cond else "FAIL ") + name + ("" if cond else ": " + str(why)), flush=True)
        failures += not cond

    try:
        a = Agent(sock)
        r, _ = a.call("ping")
        check("ping", r["ok"] and r["version"], r)
        r, o = a.call("exec", argv=["echo", "42"])
        check("exec echo 42", r["ok"] and r["status"] == 0 and o["stdout"] == b"42\n", (r, o))
        r, o = a.call("exec", argv=["sh", "-c", "exit 3"])
        check("exec status", r["ok"] and r["status"] == 3, r)
        r, o = a.call("exec", argv=["sh", "-c", "seq 1 200000"])
        want = "".join(f"{i}\n" for i in range(1, 200001)).encode()
        check("exec 1 MiB+ output", len(want) > 1 << 20 and o["stdout"] == want, len(o["stdout"]))
        r, _ = a.call("kvp-get")
        check("kvp hostname", r["ok"] and r["hostname"] == "vmms-guest", r)
        r, _ = a.call("kvp-set", key="role", value="e2e")
        r, o = a.call("exec", argv=["cat", "/run/vmms/kvp/role"])
        check("kvp host pair readable in guest", o["stdout"] == b"e2e", o)
        r, o = a.call("exec", argv=["sh", "-c", "mount -t ext4 /dev/vda /mnt && echo data > /mnt/f"])
        check("mount disk", r["ok"] and r["status"] == 0, (r, o))
        r, _ = a.call("shutdown")
        check("shutdown accepted", r["ok"], r)
        rc = worker.wait(timeout=120)
        check("worker ended after shutdown", rc == 0, rc)
        fsck = subprocess.run(["/sbin/e2fsck", "-fn", str(disk)], capture_output=True, text=True)
        check("ext4 clean after shutdown", fsck.returncode == 0, fsck.stdout + fsck.stderr)
    except Exception as e:  # report, do not hide: a failure line and a non-zero exit
        check("agent reachable", False, repr(e))
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    return failures


if __name__ == "__main__":
    sys.exit(main())
