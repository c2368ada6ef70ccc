#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-only
"""Host half of the vsock end-to-end test, run where KVM is (inside tests/kvmhost/run): starts
vmms-worker with --vsock-socket, waits for the guest's echo server, connects with
"CONNECT 5000", streams 1 MiB through it and checks the echo, then answers the guest's
connection to host port 6000 (the listener at SOCKET_6000). Exit status 0 when all held.

Usage: vsock_host.py --worker W --config XML --socket PATH [--worker-arg ARG]..."""
import argparse
import os
import socket
import subprocess
import sys
import threading
import time

SIZE = 1 << 20


def log(msg):
    print(f"VSOCK-E2E: {msg}", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--worker-arg", action="append", default=[])
    a = ap.parse_args()
    os.makedirs(os.path.dirname(a.socket), exist_ok=True)

    # The guest will connect to host port 6000: listen before the guest can try.
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(a.socket + "_6000")
    lst.listen(1)

    proc = subprocess.Popen([a.worker, "--config", a.config, "--vsock-socket", a.socket] + a.worker_arg,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = []
    listening = threading.Event()

    def reader():
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            out.append(line)
            if "VMMS-TEST: vsock-listening" in line:
                listening.set()
    threading.Thread(target=reader, daemon=True).start()

    ok = True
    try:
        deadline = time.monotonic() + 300
        while not listening.wait(1):
            if proc.poll() is not None:
                raise RuntimeError(f"the worker exited ({proc.returncode}) before the guest's echo server came up")
            if time.monotonic() > deadline:
                raise RuntimeError("the guest's echo server never came up")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(120)
        s.connect(a.socket)
        s.sendall(b"CONNECT 5000\n")
        line = b""
        while not line.endswith(b"\n"):
            b = s.recv(1)
            if not b:
                raise RuntimeError(f"connection closed during the handshake (got {line!r})")
            line += b
        if not line.startswith(b"OK "):
            raise RuntimeError(f"handshake answer {line!r}")
        log(f"handshake {line.decode().strip()}")

        data = os.urandom(SIZE)
        def sender():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=sender, daemon=True)
        t0 = time.monotonic()
        t.start()
        got = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        t.join(30)
        s.close()
        log(f"echo {len(got)} bytes in {time.monotonic() - t0:.1f} s")
        if bytes(got) != data:
            raise RuntimeError(f"echo differs: {len(got)} bytes back of {SIZE}")
        log("echo ok")

        lst.settimeout(120)
        c, _ = lst.accept()
        c.settimeout(60)
        hello = b""
        while not hello.endswith(b"\n"):
            b = c.recv(1)
            if not b:
                break
            hello += b
        log(f"guest said {hello.decode(errors='replace').strip()!r}")
        if hello != b"hello from the guest\n":
            raise RuntimeError(f"guest greeting {hello!r}")
        c.sendall(b"hello from the host\n")
        c.close()
        rc = proc.wait(240)
        log(f"worker exit {rc}")
        if rc != 0:
            ok = False
    except Exception as e:  # noqa: BLE001 - report whatever went wrong, then the output
        log(f"FAIL {e}")
        ok = False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        time.sleep(0.2)
    text = "".join(out)
    for want in (f"VMMS-TEST: vsock-echoed {SIZE}", "VMMS-TEST: vsock-host-said hello from the host"):
        if want not in text:
            log(f"FAIL missing {want!r}")
            ok = False
    sys.stdout.write(text[-6000:] if not ok else "")
    log("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
