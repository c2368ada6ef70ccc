# SPDX-License-Identifier: GPL-2.0-only
"""Real Linux guests under vmms-worker: the bundled kernel and Debian's stock cloud kernel boot
to the initramfs with 1 and 2 vCPUs, see every vCPU and the virtio disk, keep ext4 data across
a reboot, and guest poweroff and reboot end or restart the VM."""
import subprocess

import pytest

from conftest import domain_xml


def boot_smp(run_vm, kernel, initrd, vcpus, name):
    r = run_vm(domain_xml(name, kernel, initrd, "console=ttyS0 vmms.test=smp", vcpus=vcpus), name)
    assert r.rc == 0, r
    assert "VMMS-GUEST: init reached" in r.out, r
    assert f"cpus={vcpus}" in r.lines(), r
    assert "done" in r.lines(), r


@pytest.mark.parametrize("vcpus", [1, 2])
def test_bundled_kernel_boots(run_vm, guest_image, vcpus):
    boot_smp(run_vm, guest_image / "bzImage", guest_image / "initramfs.cpio.gz", vcpus, f"bundled-{vcpus}")


@pytest.mark.parametrize("vcpus", [1, 2])
def test_stock_kernel_boots(run_vm, stock_image, vcpus):
    boot_smp(run_vm, stock_image / "vmlinuz", stock_image / "initramfs.cpio.gz", vcpus, f"stock-{vcpus}")


def test_pvh_vmlinux_boots(run_vm, guest_image):
    boot_smp(run_vm, guest_image / "vmlinux", guest_image / "initramfs.cpio.gz", 2, "pvh-2")


def fresh_disk(build, name, size_mib=64):
    disk = build / "e2e-work" / f"{name}.img"
    disk.parent.mkdir(exist_ok=True)
    disk.unlink(missing_ok=True)
    with open(disk, "wb") as f:
        f.truncate(size_mib << 20)
    return disk


def test_disk_data_survives_reboot(run_vm, build, guest_image):
    disk = fresh_disk(build, "ext4")
    xml = domain_xml("disk", guest_image / "bzImage", guest_image / "initramfs.cpio.gz",
                     "console=ttyS0 vmms.test=disk vmms.data=written-by-vmms", vcpus=2, disks=[disk])
    first = run_vm(xml, "disk-1")
    assert first.rc == 0, first
    assert "disk-write ok" in first.lines(), first
    # The file system the guest made is clean and holds the file, seen from the host.
    fsck = subprocess.run(["/sbin/e2fsck", "-fn", str(disk)], capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    second = run_vm(xml, "disk-2")
    assert second.rc == 0, second
    assert "disk-data written-by-vmms" in second.lines(), second
    assert "disk-verify ok" in second.lines(), second


def test_guest_reboot_restarts_vm(run_vm, build, guest_image):
    disk = fresh_disk(build, "reboot")
    xml = domain_xml("reboot", guest_image / "bzImage", guest_image / "initramfs.cpio.gz",
                     "console=ttyS0 vmms.test=reboot", disks=[disk], on_reboot="restart")
    r = run_vm(xml, "reboot-restart")
    lines = r.lines()
    assert r.rc == 0, r
    assert "boot=1" in lines and "rebooting" in lines, r
    assert "boot=2" in lines and "rebooted" in lines, r
    assert r.out.count("VMMS-GUEST: init reached") == 2, r


def test_guest_reboot_with_destroy_ends_vm(run_vm, guest_image):
    xml = domain_xml("reboot-destroy", guest_image / "bzImage", guest_image / "initramfs.cpio.gz",
                     "console=ttyS0 vmms.test=reboot", on_reboot="destroy")
    r = run_vm(xml, "reboot-destroy")
    assert r.rc == 3, r
    assert r.out.count("VMMS-GUEST: init reached") == 1, r


def test_guest_poweroff_ends_vm(run_vm, guest_image):
    xml = domain_xml("poweroff", guest_image / "bzImage", guest_image / "initramfs.cpio.gz",
                     "console=ttyS0 vmms.test=poweroff")
    r = run_vm(xml, "poweroff")
    assert r.rc == 0, r
    assert "VMMS-GUEST: init reached" in r.out, r
