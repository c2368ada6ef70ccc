# SPDX-License-Identifier: GPL-2.0-only
"""Shared fixtures for the end-to-end tests: where the build and the guest image are, and a
helper that runs vmms-worker where real KVM is (tests/kvmhost/run decides)."""
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def build_dir():
    return pathlib.Path(os.environ.get("VMMS_BUILD", ROOT / "build")).resolve()


@pytest.fixture(scope="session")
def build():
    b = build_dir()
    worker = b / "vmms-worker"
    if not worker.exists():
        pytest.fail(f"{worker} missing: run 'make' first")
    return b


@pytest.fixture(scope="session")
def guest_image(build):
    """The bundled guest (make guest-image), built here if it is not there yet."""
    out = build / "guest"
    if not (out / "bzImage").exists() or not (out / "initramfs.cpio.gz").exists():
        subprocess.run([str(ROOT / "guest-additions/image/build"), str(out)], check=True)
    return out


@pytest.fixture(scope="session")
def stock_image(build):
    """Debian's stock cloud kernel with an initramfs that loads its virtio modules."""
    out = build / "guest"
    if not (out / "stock/vmlinuz").exists():
        subprocess.run([str(ROOT / "guest-additions/image/build"), "--stock-kernel", str(out)], check=True)
    return out / "stock"


def domain_xml(name, kernel, initrd=None, cmdline="", vcpus=1, memory_mib=256, disks=(),
               on_reboot="destroy", extra_devices=""):
    disk_xml = "".join(
        f"<disk type='file' device='disk'><driver name='qemu' type='raw'/>"
        f"<source file='{d}'/><target dev='vd{chr(ord('a') + i)}' bus='virtio'/></disk>"
        for i, d in enumerate(disks))
    initrd_xml = f"<initrd>{initrd}</initrd>" if initrd else ""
    return (f"<domain type='kvm'><name>{name}</name><memory unit='MiB'>{memory_mib}</memory>"
            f"<vcpu>{vcpus}</vcpu><os><type arch='x86_64'>hvm</type><kernel>{kernel}</kernel>"
            f"{initrd_xml}<cmdline>{cmdline}</cmdline></os><on_reboot>{on_reboot}</on_reboot>"
            f"<devices>{disk_xml}<serial type='stdio'><target port='0'/></serial>"
            f"{extra_devices}</devices></domain>")


class Run:
    def __init__(self, proc):
        self.rc = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def lines(self, prefix="VMMS-TEST: "):
        return [l[len(prefix):].strip() for l in self.out.splitlines() if l.startswith(prefix)]

    def __repr__(self):
        return f"rc={self.rc}\n--- stdout tail ---\n{self.out[-3000:]}\n--- stderr ---\n{self.err[-2000:]}"


@pytest.fixture
def run_vm(build, tmp_path_factory):
    """Writes a definition inside the build tree (the nested host sees the checkout at the same
    path) and runs vmms-worker on it through tests/kvmhost/run."""
    work = build / "e2e-work"
    work.mkdir(exist_ok=True)

    def run(xml, name, timeout=600):
        cfg = work / f"{name}.xml"
        cfg.write_text(xml)
        proc = subprocess.run(
            [str(ROOT / "tests/kvmhost/run"), "--timeout", str(timeout), "--",
             str(build / "vmms-worker"), "--config", str(cfg)],
            cwd=ROOT, capture_output=True, text=True, timeout=timeout + 120)
        return Run(proc)

    return run
