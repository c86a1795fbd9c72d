"""Accelerator probe: verdicts, caching, explicit kvm failing clearly. The real probe runs on this host,
where /dev/kvm exists but KVM guests hang; it must pick TCG and say so loudly."""

from __future__ import annotations

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
def test_auto_probe_detects_hanging_kvm_and_caches_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    first = accel.resolve("auto")
    err = capsys.readouterr().err
    assert first.accel is accel.Accel.TCG and not first.cached
    assert "falling back to TCG" in err
    second = accel.resolve("auto")
    assert second.cached and second.accel is accel.Accel.TCG and second.reason == first.reason
    assert "cached verdict" in capsys.readouterr().err
    assert accel.resolve("auto", announce=False).cached and capsys.readouterr().err == ""


@pytest.mark.vm
def test_explicit_kvm_that_hangs_is_a_clear_error() -> None:
    with pytest.raises(FactoryError, match='accelerator = "kvm" does not work on this host'):
        accel.resolve("kvm")
