# SPDX-License-Identifier: GPL-2.0-only
"""virtio-vsock under vmmsd with a real Linux guest (issue 4): the worker is sandboxed, so the
guest's connections to host port P reach <runtime>/vms/<name>/vsock.sock_P through vmmsd's
vsock connector (lib/ctlproto.h); the host reaches a guest port through vsock.sock; a port
nobody listens on is refused; and resuming a paused VM makes the agent set the guest's clock
(time sync); after a vmmsd restart (kill -9) the guest still reaches host port 6000 (the
reattach hands over a new connector). The work is vsock_vmmsd_host.py, run where KVM is by
tests/kvmhost/run."""
import subprocess

from conftest import ROOT


def test_vsock_under_vmmsd_and_time_sync(build, guest_image):
    if not (build / "vmmsd").exists() or not (build / "virtctl").exists():
        raise AssertionError(f"build {build} first: make all guest-image")
    work = build / "e2e-work" / "vsock-vmmsd"
    work.mkdir(parents=True, exist_ok=True)
    echo = work / "vsock_echo"
    subprocess.run(["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(echo),
                    str(ROOT / "tests/e2e/vsock_echo.c")], check=True)
    proc = subprocess.run(
        [str(ROOT / "tests/kvmhost/run"), "--timeout", "900", "--",
         "python3", str(ROOT / "tests/e2e/vsock_vmmsd_host.py"), str(build), str(echo)],
        cwd=ROOT, capture_output=True, text=True, timeout=1000)
    lines = [l[len("VV-E2E: "):] for l in proc.stdout.splitlines() if l.startswith("VV-E2E: ")]
    report = (f"rc={proc.returncode}\n" + "\n".join(lines) + f"\n--- stdout tail ---\n{proc.stdout[-4000:]}"
              f"\n--- stderr ---\n{proc.stderr[-2000:]}")
    assert "DONE" in lines, report
    fails = [l for l in lines if l.startswith("FAIL")]
    assert not fails, report
    for name in ("host -> guest through vsock.sock: 256 KiB echoed",
                 "guest -> host port 6000 reaches vsock.sock_6000", "the guest got the host's answer",
                 "guest -> host port without listener is refused", "refusal is prompt (< 10 s)",
                 "guest clock within 2 s of the host after resume", "reattached to the same worker",
                 "guest -> host port 6000 reaches vsock.sock_6000 after a vmmsd restart",
                 "the guest got the host's answer after a vmmsd restart"):
        assert f"PASS {name}" in lines, report
    assert proc.returncode == 0, report
