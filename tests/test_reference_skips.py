"""A fresh clone with no reference schemas beside it: the reference tests skip with the reason, nothing errors."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _pytest(shared: Path, *args: str, require: bool = False) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "FACTORY_REQUIRE_REFERENCE"))}
    env["FACTORY_SHARED_DIR"] = str(shared)
    if require:
        env["FACTORY_REQUIRE_REFERENCE"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_without_schemas_every_reference_test_is_skipped_with_the_reason(tmp_path: Path) -> None:
    run = _pytest(tmp_path, "-m", "reference", "-q", "-rs", "tests")
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"(\d+) skipped, \d+ deselected in .*", summary)  # no passed, failed or error
    assert match and int(match[1]) >= 10, summary  # the OVF and autoinstall schema tests are there
    skips = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert sum(int(re.match(r"SKIPPED \[(\d+)\]", line)[1]) for line in skips) == int(match[1])  # type: ignore[index]
    assert all("FACTORY_SHARED_DIR" in line and str(tmp_path) in line for line in skips), skips


def test_required_reference_schemas_fail_when_absent(tmp_path: Path) -> None:
    """CI sets FACTORY_REQUIRE_REFERENCE=1: there a missing schema is an error, never a silent skip."""
    target = "tests/artifact/test_ova.py::test_descriptor_golden_and_schema_valid"
    assert _pytest(tmp_path, "-q", target).returncode == 0
    required = _pytest(tmp_path, "-q", target, require=True)
    assert required.returncode == 1, required.stdout
    assert "reference schemas not found" in required.stdout
