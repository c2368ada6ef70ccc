# SPDX-License-Identifier: GPL-2.0-only
"""The manual pages are warning-free (mandoc -T lint, man --warnings) and say what the
programs do: every virtctl command and every vmms-worker and vmmsd option in --help is
documented in its page."""
import re
import subprocess

import pytest

from conftest import ROOT

PAGES = sorted((ROOT / "man").glob("*.[1-8]"))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_page_lint_clean(page):
    lint = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(page)], capture_output=True, text=True)
    assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint.stdout + lint.stderr
    man = subprocess.run(["man", "--warnings", "-l", str(page)], capture_output=True, text=True,
                         env={"MANWIDTH": "80", "PATH": "/usr/bin:/bin"})
    assert man.returncode == 0 and not man.stderr.strip(), man.stderr


def page_text(name):
    return subprocess.run(["mandoc", "-T", "ascii", str(ROOT / "man" / name)], capture_output=True,
                          text=True, check=True).stdout.replace("\u2010", "-")


def plain(text):
    return re.sub(r".\x08", "", text)


def test_every_virtctl_command_documented(build):
    help_text = subprocess.run([str(build / "virtctl"), "--help"], capture_output=True, text=True).stdout
    commands = re.findall(r"^  ([a-z][a-z-]+)\s", help_text, re.M)
    assert len(commands) >= 10, help_text
    page = plain(page_text("virtctl.1"))
    for cmd in commands:
        assert re.search(rf"\b{re.escape(cmd)}\b", page), f"virtctl.1 does not document '{cmd}'"


@pytest.mark.parametrize("program,page", [("vmms-worker", "vmms-worker.8"), ("vmmsd", "vmmsd.8")])
def test_every_option_documented(build, program, page):
    help_text = subprocess.run([str(build / program), "--help"], capture_output=True, text=True).stdout
    options = set(re.findall(r"(--[a-z][a-z-]+)", help_text))
    assert options, help_text
    text = plain(page_text(page))
    for opt in sorted(options):
        assert opt in text, f"{page} does not document {opt}"
