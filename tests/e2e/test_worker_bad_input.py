# SPDX-License-Identifier: GPL-2.0-only
"""Bad input to vmms-worker: a missing or corrupt kernel, initrd or disk, a definition the
schema rejects, more memory or vCPUs than the host allows. Each gives one clear line on
stderr naming the problem, a non-zero exit status and no core dump (no signal death)."""
import os
import pathlib
import subprocess

import pytest

from conftest import ROOT, domain_xml

HAVE_KVM = os.access("/dev/kvm", os.R_OK | os.W_OK)


def run_worker(build, tmp_path, xml, name="bad"):
    cfg = tmp_path / f"{name}.xml"
    cfg.write_text(xml)
    cmd = [str(build / "vmms-worker"), "--config", str(cfg)]
    if not HAVE_KVM:
        # Checks that come after opening /dev/kvm need a KVM: use the nested host.
        cmd = [str(ROOT / "tests/kvmhost/run"), "--"] + cmd
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert p.returncode > 0, f"expected a non-zero exit status, got {p.returncode}: {p.stderr}"
    lines = [l for l in p.stderr.splitlines() if l.startswith("vmms-worker")]
    assert len(lines) == 1, p.stderr
    return p.returncode, lines[0]


@pytest.fixture
def files(build, tmp_path):
    # Inside the build tree: the nested host sees the checkout at the same path.
    d = build / "e2e-work" / "bad-input"
    d.mkdir(parents=True, exist_ok=True)
    good_kernel = build / "guests" / "uart.elf"
    assert good_kernel.exists(), "build the test guests first (make test-guests)"
    corrupt = d / "corrupt-kernel"
    corrupt.write_bytes(b"\x7fELF" + os.urandom(60))
    garbage = d / "garbage"
    garbage.write_bytes(os.urandom(4096))
    truncated = d / "truncated-bzimage"
    bz = build / "guest" / "bzImage"
    truncated.write_bytes(bz.read_bytes()[:8192] if bz.exists() else b"MZ" + b"\0" * 0x200 + b"HdrS")
    return {"dir": d, "kernel": good_kernel, "corrupt": corrupt, "garbage": garbage, "truncated": truncated}


def test_missing_kernel(build, tmp_path, files):
    rc, line = run_worker(build, tmp_path, domain_xml("t", files["dir"] / "nope"))
    assert rc == 2 and "kernel" in line and "nope" in line and "No such file" in line


@pytest.mark.parametrize("which", ["corrupt", "garbage", "truncated"])
def test_corrupt_kernel(build, tmp_path, files, which):
    rc, line = run_worker(build, tmp_path, domain_xml("t", files[which]))
    assert rc == 2 and "kernel" in line, line


def test_missing_initrd(build, tmp_path, files):
    rc, line = run_worker(build, tmp_path, domain_xml("t", files["kernel"], initrd=files["dir"] / "no-initrd"))
    assert rc == 2 and "initrd" in line and "no-initrd" in line


def test_missing_disk(build, tmp_path, files):
    rc, line = run_worker(build, tmp_path, domain_xml("t", files["kernel"], disks=[files["dir"] / "no-disk.img"]))
    assert rc == 2 and "disk vda" in line and "no-disk.img" in line


def test_schema_rejects(build, tmp_path, files):
    rc, line = run_worker(build, tmp_path, "<domain type='kvm'><name>t</name><bogus/></domain>")
    assert rc == 2 and "schema" in line


def test_schema_verdict_comes_first_and_no_guest_runs(build, tmp_path, files):
    """In the foreground the schema validates in a child process while the machine is built.
    A definition only the schema refuses (the mapping ignores <title>'s content) must still
    never run: exit 2 with the schema's message, and no banner from the guest; and the
    schema's verdict wins over a later problem (a missing kernel), as when it ran first."""
    bad_title = "<title><b>not text</b></title>"
    xml = domain_xml("t", files["kernel"]).replace("<memory", bad_title + "<memory", 1)
    cfg = tmp_path / "title.xml"
    cfg.write_text(xml)
    if HAVE_KVM:
        p = subprocess.run([str(build / "vmms-worker"), "--config", str(cfg)], capture_output=True, timeout=60)
        assert p.returncode == 2, p
        assert b"vmms test guest" not in p.stdout, p.stdout   # uart.elf's first words
    rc, line = run_worker(build, tmp_path, xml)
    assert rc == 2 and "schema" in line and "title" in line, line
    rc, line = run_worker(build, tmp_path, domain_xml("t", files["dir"] / "nope").replace(
        "<memory", bad_title + "<memory", 1))
    assert rc == 2 and "schema" in line and "nope" not in line, line


def test_not_xml(build, tmp_path):
    rc, line = run_worker(build, tmp_path, "this is not xml")
    assert rc == 2


def test_too_much_memory(build, tmp_path, files):
    xml = domain_xml("t", files["kernel"], memory_mib=1 << 20)  # 1 TiB
    rc, line = run_worker(build, tmp_path, xml)
    assert rc == 2 and "memory" in line and "more than this host has" in line


def test_too_many_vcpus(build, tmp_path, files):
    rc, line = run_worker(build, tmp_path, domain_xml("t", files["kernel"], vcpus=4096))
    assert rc == 2 and "vcpu" in line.lower()


def test_missing_config_file(build, tmp_path):
    p = subprocess.run([str(build / "vmms-worker"), "--config", str(tmp_path / "none.xml")],
                       capture_output=True, text=True)
    assert p.returncode == 2 and "none.xml" in p.stderr


def test_usage_errors(build):
    p = subprocess.run([str(build / "vmms-worker")], capture_output=True, text=True)
    assert p.returncode == 2 and "--config" in p.stderr
    p = subprocess.run([str(build / "vmms-worker"), "--help"], capture_output=True, text=True)
    assert p.returncode == 0 and "Exit status" in p.stdout
