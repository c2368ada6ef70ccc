# SPDX-License-Identifier: GPL-2.0-only
"""Guest additions with a real Linux guest (issue 4): vmmsd runs the bundled guest with
vmms-guestd, an ext4 disk and a vsock device; virtctl exec (echo 42, exit status, 1.5 MiB of
output, stdin), KVP (hostname, kernel, a host pair read in the guest), fs freeze blocking a
write until thaw, the heartbeat going to Lost Communication when the agent is killed and back to
OK when it restarts, and virtctl shutdown leaving the ext4 clean (e2fsck -fn on the host).
The work is guest_additions_host.py, run where KVM is by tests/kvmhost/run (one nested host)."""
import subprocess

from conftest import ROOT


def test_guest_additions_linux(build, guest_image):
    if not (build / "vmmsd").exists() or not (build / "virtctl").exists():
        raise AssertionError(f"build {build} first: make all guest-image")
    proc = subprocess.run(
        [str(ROOT / "tests/kvmhost/run"), "--timeout", "1500", "--",
         "python3", str(ROOT / "tests/e2e/guest_additions_host.py"), str(build)],
        cwd=ROOT, capture_output=True, text=True, timeout=1700)
    lines = [l[len("GA-E2E: "):] for l in proc.stdout.splitlines() if l.startswith("GA-E2E: ")]
    report = f"rc={proc.returncode}\n" + "\n".join(lines) + f"\n--- stdout tail ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-2000:]}"
    assert "DONE" in lines, report
    fails = [l for l in lines if l.startswith("FAIL")]
    assert not fails, report
    for name in ("exec echo 42", "exec failing status", "exec 1.5 MiB output whole", "kvp hostname", "kvp address",
                 "kvp host pair readable in the guest", "write blocks while frozen", "write completes after thaw",
                 "heartbeat Lost Communication after the agent is killed", "heartbeat OK after the agent restarts",
                 "virtctl shutdown", "ext4 clean after shutdown (e2fsck -fn)"):
        assert f"PASS {name}" in lines, report
    assert proc.returncode == 0, report
