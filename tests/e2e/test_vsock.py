# SPDX-License-Identifier: GPL-2.0-only
"""virtio-vsock with a real Linux guest: the host reaches a guest echo server through the
worker's Unix socket ("CONNECT 5000"), 1 MiB goes there and back intact, and the guest's
connection to host port 6000 lands on the listener at SOCKET_6000. The guest half is
vsock_echo.c (static) in an extra cpio appended to the bundled initramfs; the host half is
vsock_host.py, run where KVM is by tests/kvmhost/run."""
import gzip
import shutil
import subprocess

from conftest import ROOT, domain_xml


def vsock_initramfs(build, guest_image):
    """The bundled initramfs plus /tests/vsock.sh and /tests/vsock_echo (the kernel unpacks
    concatenated cpio archives in order)."""
    work = build / "e2e-work" / "vsock"
    stage = work / "stage"
    shutil.rmtree(work, ignore_errors=True)
    (stage / "tests").mkdir(parents=True)
    subprocess.run(["cc", "-static", "-O2", "-Wall", "-Wextra", "-Werror", "-o",
                    str(stage / "tests" / "vsock_echo"), str(ROOT / "tests/e2e/vsock_echo.c")], check=True)
    shutil.copy(ROOT / "tests/e2e/vsock-guest.sh", stage / "tests" / "vsock.sh")
    files = "./tests\n./tests/vsock.sh\n./tests/vsock_echo\n"
    extra = subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], cwd=stage,
                           input=files.encode(), capture_output=True, check=True).stdout
    out = work / "initramfs.cpio.gz"
    with open(out, "wb") as f:
        f.write((guest_image / "initramfs.cpio.gz").read_bytes())
        f.write(gzip.compress(extra))
    return out


def test_vsock_echo_1mib_and_guest_to_host(build, guest_image):
    initrd = vsock_initramfs(build, guest_image)
    xml = domain_xml("vsock", guest_image / "bzImage", initrd, "console=ttyS0 vmms.test=vsock",
                     extra_devices="<vsock model='virtio'><cid auto='no' address='3'/></vsock>")
    cfg = build / "e2e-work" / "vsock" / "vsock.xml"
    cfg.write_text(xml)
    # The sockets live in the runner's fresh /tmp: 9p shares cannot hold Unix sockets.
    proc = subprocess.run(
        [str(ROOT / "tests/kvmhost/run"), "--timeout", "600", "--",
         "python3", str(ROOT / "tests/e2e/vsock_host.py"), "--worker", str(build / "vmms-worker"),
         "--config", str(cfg), "--socket", "/tmp/vmms-vsock-e2e/vsock.sock"],
        cwd=ROOT, capture_output=True, text=True, timeout=720)
    report = f"rc={proc.returncode}\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, report
    assert "VSOCK-E2E: echo ok" in proc.stdout, report
    assert "VSOCK-E2E: PASS" in proc.stdout, report
