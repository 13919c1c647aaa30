"""The README's commands on a bare machine: ``make test`` installs what the suite needs before running it (dry runs of
make; nothing is installed here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def dry_run(*arguments: str) -> list[str]:
    """The commands ``make -n`` would run, one a line."""
    done = subprocess.run(["make", "-n", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.splitlines()


def test_make_test_installs_chromium_first_when_it_is_missing(tmp_path) -> None:
    commands = dry_run("test", f"CHROMIUM={tmp_path / 'chromium'}")
    install = next(i for i, line in enumerate(commands) if "apt-get install" in line and line.endswith("chromium"))
    tests = next(i for i, line in enumerate(commands) if "-m pytest" in line)
    assert any("apt-get update" in line for line in commands[:install])
    assert install < tests


def test_make_test_installs_nothing_when_chromium_is_there(tmp_path) -> None:
    present = tmp_path / "chromium"
    present.touch()
    assert not any("apt-get" in line for line in dry_run("test", f"CHROMIUM={present}"))
