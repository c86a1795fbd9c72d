"""The declaration API (factory.options.opt): typed values, ranges, enums and checks declared once."""

# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum

import pytest

from factory.errors import FactoryError
from factory.options import Component, Deferred, opt, options_of
from factory.schema.types import Duration, SizeMiB, check


class Mode(StrEnum):
    FAST = "fast"
    SLOW = "slow"


def _even(value: int) -> None:
    if value % 2:
        raise FactoryError(f"count {value} is odd", hint="use an even count")


def _pairs(raw: list[str] | tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    if all(isinstance(item, tuple) for item in raw):
        return tuple(raw)  # type: ignore[arg-type]
    if not all("=" in item for item in raw):
        raise FactoryError("pairs need KEY=VALUE")
    return tuple(tuple(item.split("=", 1)) for item in raw)  # type: ignore[misc]


REMOTE = Deferred("remote lookup")


# Not registered (no kind/name): declared only for these tests.
@dataclass(frozen=True)
class Sample(Component):
    wait: Duration = opt("10s", minimum=0, help="A Go duration.")
    size: SizeMiB = opt("1G", maximum=2048, help="A disk size.")
    sizes: list[SizeMiB] = opt([], help="Disk sizes.")
    timeout: Duration | None = opt(None, help="An optional duration.")
    cpus: int = opt(1, minimum=1, maximum=8, help="A range.")
    cache: str = opt("writeback", choices=("writeback", "none"), help="Closed choices.")
    mode: Mode = opt("fast", help="An enum.")
    count: int = opt(2, check=_even, help="Any rule.")
    pairs: tuple[tuple[str, str], ...] = opt([], written=list[str], parse=_pairs, help="Parsed from raw.")
    remote: str | None = opt(None, check=REMOTE, help="A check a runtime package implements.")


def test_defaults_are_converted_to_the_declared_types() -> None:
    s = Sample()
    assert isinstance(s.wait, Duration) and s.wait == 10.0 and s.wait.text == "10s" and f"{s.wait}" == "10.0"
    assert isinstance(s.size, SizeMiB) and s.size == 1024 and s.size.text == "1G" and f"{s.size}M" == "1024M"
    assert s.mode is Mode.FAST and s.mode == "fast"
    assert s.pairs == () and s.timeout is None
    assert check(s) == []


def test_values_as_written_are_converted_and_replace_keeps_them() -> None:
    s = Sample(wait="1m30s", sizes=["512M", 2048], timeout="5m", mode="slow", pairs=["a=b"])
    assert (s.wait, s.sizes, s.timeout, s.mode, s.pairs) == (90.0, [512, 2048], 300.0, Mode.SLOW, (("a", "b"),))
    again = dataclasses.replace(s, cpus=2)
    assert again.wait == 90.0 and again.wait.text == "1m30s" and again.pairs == (("a", "b"),)


def test_docs_see_the_default_as_written_and_a_type_label() -> None:
    infos = {o.name: o for o in options_of(Sample)}
    assert infos["wait"].default == "10s" and infos["wait"].type_name == "duration"
    assert infos["sizes"].type_name == "list[size]" and infos["mode"].type_name == "str"
    assert infos["pairs"].type_name == "list[str]"
    assert infos["cpus"].minimum == 1 and infos["cache"].choices == ("writeback", "none")


@pytest.mark.parametrize(("kwargs", "option", "message"), [
    ({"wait": "10"}, "wait", "invalid wait '10'"),
    ({"size": "big"}, "size", "invalid size 'big'"),
    ({"mode": "fats"}, "mode", "invalid mode 'fats'; allowed: fast, slow"),
    ({"pairs": ["x"]}, "pairs", "pairs need KEY=VALUE"),
])
def test_a_value_that_does_not_parse_is_an_error_naming_the_option(kwargs: dict[str, object], option: str,
                                                                  message: str) -> None:
    with pytest.raises(FactoryError) as err:
        Sample(**kwargs)  # type: ignore[arg-type]
    assert message in err.value.message


@pytest.mark.parametrize(("kwargs", "option", "message", "hint"), [
    ({"cpus": 0}, "cpus", "invalid cpus '0': must be from 1 to 8", "set cpus from 1 to 8"),
    ({"cpus": 9}, "cpus", "invalid cpus '9': must be from 1 to 8", "set cpus from 1 to 8"),
    ({"wait": "-1s"}, "wait", "invalid wait '-1s': must be at least 0s", "set wait at least 0s"),
    ({"size": "3G"}, "size", "invalid size '3G': must be at most 2048 MiB", "set size at most 2048 MiB"),
    ({"cache": "nonee"}, "cache", "invalid cache 'nonee'; allowed: writeback, none", "did you mean 'none'?"),
    ({"count": 3}, "count", "count 3 is odd", "use an even count"),
])
def test_declared_constraints_are_checked(kwargs: dict[str, object], option: str, message: str, hint: str) -> None:
    (problem,) = check(Sample(**kwargs))  # type: ignore[arg-type]
    assert (problem.option, problem.message, problem.hint) == (option, message, hint)


def test_a_deferred_check_runs_its_implementation_and_says_when_there_is_none() -> None:
    with pytest.raises(RuntimeError, match="remote lookup"):
        check(Sample(remote="x"))
    seen: list[str] = []
    REMOTE.implement(seen.append)
    assert check(Sample(remote="x")) == [] and seen == ["x"]
