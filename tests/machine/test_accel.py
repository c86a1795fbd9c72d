"""Accelerator probe: verdicts, caching, explicit kvm failing clearly. The real probe runs on this host,
where /dev/kvm exists but KVM guests hang; it must pick TCG and say so loudly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.machine import accel


def test_tcg_requested_needs_no_probe() -> None:
    v = accel.resolve("tcg")
    assert v.accel is accel.Accel.TCG and v.timeout_factor == accel.TCG_TIMEOUT_FACTOR


def test_unknown_accelerator_is_refused() -> None:
    with pytest.raises(FactoryError, match="not supported"):
        accel.resolve("hvf")


def test_probe_payload_boots_under_tcg() -> None:
    ok, why = accel.boots_with("tcg", timeout=60)
    assert ok, why


@pytest.mark.vm
def test_auto_probe_detects_hanging_kvm_and_caches_the_verdict(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = accel.resolve("auto")
    err = capsys.readouterr().err
    assert first.accel is accel.Accel.TCG and not first.cached
    assert "falling back to TCG" in err
    second = accel.resolve("auto")
    assert second.cached and second.accel is accel.Accel.TCG and second.reason == first.reason
    assert "cached verdict" in capsys.readouterr().err
    assert accel.resolve("auto", announce=False).cached and capsys.readouterr().err == ""
    # After a reboot KVM may work (nested virtualisation enabled): the verdict of another boot is not reused.
    monkeypatch.setattr(accel, "_boot_id", lambda: "another-boot")
    third = accel.resolve("auto", announce=False)
    assert not third.cached and third.accel is accel.Accel.TCG


@pytest.mark.vm
def test_explicit_kvm_that_hangs_is_a_clear_error() -> None:
    with pytest.raises(FactoryError, match='accelerator = "kvm" does not work on this host'):
        accel.resolve("kvm")


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root (CI runs as root)")
def test_a_user_who_cannot_open_dev_kvm_is_told_at_once_and_nothing_is_cached() -> None:
    """nobody is not in the kvm group: no probe runs (it would take its timeout), the reason names the group, and
    no verdict is cached, so adding the user to the group takes effect on the next build."""
    cache = Path(tempfile.mkdtemp(prefix="factory-accel-"))  # in /tmp itself: pytest's folders are root's alone
    cache.chmod(0o777)
    code = ("from factory.machine import accel; v = accel.resolve('auto', announce=False); "
            "print(v.accel.value, v.reason, v.cached, sep='|')")
    proc = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--", sys.executable, "-c",
                           code], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "FACTORY_CACHE_DIR": str(cache), "HOME": "/nonexistent"})
    try:
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == ("tcg|/dev/kvm is not accessible to this user (add yourself to the 'kvm' "
                                       "group)|False")
        assert not list(cache.rglob("*.json")), "a verdict that costs nothing to find was cached"
    finally:
        shutil.rmtree(cache)
