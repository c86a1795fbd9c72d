"""The step runner: stage IDs, cleanups in reverse on failure and interrupt, event monitors."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from factory.build import (
    Event,
    EventBus,
    EventKind,
    HumanMonitor,
    JsonMonitor,
    OnError,
    RunnerContext,
    Step,
    run_steps,
    stage_id,
)
from factory.errors import FactoryError


class Rec(Step[RunnerContext]):
    def __init__(self, name: str, log: list[str], fail: BaseException | None = None, opt: Any = 1) -> None:
        self.name, self.log, self.fail, self.opt = name, log, fail, opt

    def options(self, ctx: RunnerContext) -> dict[str, Any]:
        return {"opt": self.opt}

    def run(self, ctx: RunnerContext) -> None:
        self.log.append(f"run {self.name}")
        ctx.cleanups.push(self.name, lambda: self.log.append(f"undo {self.name}"))
        if self.fail is not None:
            raise self.fail


def _ctx(on_error: OnError = OnError.CLEANUP) -> tuple[RunnerContext, list[dict[str, Any]]]:
    bus = EventBus()
    out = io.StringIO()
    bus.subscribe(JsonMonitor(out))
    ctx = RunnerContext(build_name="b.qemu.x", bus=bus, on_error=on_error)
    events: list[dict[str, Any]] = []
    bus.subscribe(lambda ev: events.append(json.loads(ev.as_json())))
    return ctx, events


def test_stage_id_changes_with_options_parent_and_inputs(tmp_path: Path) -> None:
    f = tmp_path / "script.sh"
    f.write_text("a")
    base = stage_id("provision", {"inline": ["x"]}, "p", {"script": f})
    assert base == stage_id("provision", {"inline": ["x"]}, "p", {"script": f})
    assert base != stage_id("provision", {"inline": ["y"]}, "p", {"script": f})
    assert base != stage_id("provision", {"inline": ["x"]}, "q", {"script": f})
    f.write_text("bb")
    assert base != stage_id("provision", {"inline": ["x"]}, "p", {"script": f})


def test_success_runs_cleanups_in_reverse_and_chains_stage_ids() -> None:
    log: list[str] = []
    ctx, events = _ctx()
    run_steps([Rec("a", log), Rec("b", log)], ctx)
    assert log == ["run a", "run b", "undo b", "undo a"]
    assert ctx.stage_ids["b"] == stage_id("b", {"opt": 1}, ctx.stage_ids["a"], {})
    kinds = [e["type"] for e in events]
    assert kinds[0] == EventKind.BUILD_STARTED and kinds[-1] == EventKind.BUILD_FINISHED
    started = [e for e in events if e["type"] == EventKind.STEP_STARTED]
    assert [e["stage_id"] for e in started] == [ctx.stage_ids["a"], ctx.stage_ids["b"]]


@pytest.mark.parametrize("exc", [FactoryError("boom"), KeyboardInterrupt(), RuntimeError("bug")])
def test_failure_or_interrupt_cleans_up_in_reverse(exc: BaseException) -> None:
    log: list[str] = []
    ctx, events = _ctx()
    seen: list[BaseException] = []
    with pytest.raises(type(exc)):
        run_steps([Rec("a", log), Rec("b", log, fail=exc), Rec("c", log)], ctx,
                  on_failure=lambda c, e: seen.append(e))
    assert log == ["run a", "run b", "undo b", "undo a"]
    assert seen == [exc]
    assert any(e["type"] == EventKind.STEP_FAILED and e["step"] == "b" for e in events)


def test_failing_cleanup_does_not_stop_the_others() -> None:
    log: list[str] = []
    ctx, events = _ctx()

    class Bad(Rec):
        def run(self, ctx: RunnerContext) -> None:
            ctx.cleanups.push("bad", lambda: 1 / 0)  # type: ignore[func-returns-value]

    run_steps([Rec("a", log), Bad("bad", log)], ctx)
    assert log == ["run a", "undo a"]
    assert any("cleanup 'bad' failed" in e.get("message", "") for e in events)


@pytest.mark.parametrize("mode", [OnError.ABORT, OnError.RUN_CLEANUP_PROVISIONER])
def test_on_error_abort_keeps_everything(mode: OnError) -> None:
    log: list[str] = []
    ctx, events = _ctx(mode)
    with pytest.raises(FactoryError):
        run_steps([Rec("a", log), Rec("b", log, fail=FactoryError("x"))], ctx)
    assert log == ["run a", "run b"]
    assert any("leaving everything in place" in e.get("message", "") for e in events)


def _serial_run(monitor: HumanMonitor) -> None:
    monitor(Event(EventKind.STEP_STARTED, "qemu.a", step="boot", message="boot"))
    for n in range(40):
        monitor(Event(EventKind.OUTPUT, "qemu.a", source="serial", message=f"console line {n}"))
    monitor(Event(EventKind.OUTPUT, "qemu.a", source="shell", message="provisioner says hi"))


def test_serial_console_stays_in_its_file_until_a_step_fails(capsys: pytest.CaptureFixture[str]) -> None:
    monitor = HumanMonitor()
    _serial_run(monitor)
    quiet = capsys.readouterr().err
    assert "console line" not in quiet and "[shell] provisioner says hi" in quiet
    monitor(Event(EventKind.STEP_FAILED, "qemu.a", step="boot"))
    failed = capsys.readouterr().err
    shown = [line for line in failed.splitlines() if "[serial]" in line]
    assert len(shown) == HumanMonitor.SERIAL_TAIL and shown[-1].endswith("console line 39")  # the last lines
    assert "last 25 lines of the serial console" in failed
    assert failed.index("console line 39") < failed.index("step 'boot' failed")


def test_debug_shows_the_serial_console_as_it_comes(capsys: pytest.CaptureFixture[str]) -> None:
    _serial_run(HumanMonitor(show_serial=True))
    assert sum("[serial] console line" in line for line in capsys.readouterr().err.splitlines()) == 40


class Flaky(Step[RunnerContext]):
    """Fails its first `failures` runs, as a provisioner hitting a transient error would."""

    name = "flaky"

    def __init__(self, log: list[str], failures: int) -> None:
        self.log, self.failures = log, failures

    def run(self, ctx: RunnerContext) -> None:
        self.log.append("run flaky")
        if self.failures:
            self.failures -= 1
            raise FactoryError("transient")


@pytest.mark.parametrize("answers, outcome", [
    (["r"], "finished"),               # retry: the step runs again and the build goes on
    (["x", "c"], "cleaned"),           # anything else is asked again; c cleans up
    (["a"], "kept"),                   # a: abort, leaving everything in place
])
def test_on_error_ask_offers_cleanup_abort_or_retry(answers: list[str], outcome: str) -> None:
    log: list[str] = []
    ctx, _events = _ctx(OnError.ASK)
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return answers[len(asked) - 1]

    ctx.ask = ask
    steps = [Rec("a", log), Flaky(log, failures=1), Rec("b", log)]
    if outcome == "finished":
        run_steps(steps, ctx)
        assert log == ["run a", "run flaky", "run flaky", "run b", "undo b", "undo a"]
    else:
        with pytest.raises(FactoryError):
            run_steps(steps, ctx)
        assert log == (["run a", "run flaky", "undo a"] if outcome == "cleaned" else ["run a", "run flaky"])
    assert len(asked) == len(answers) and "[c] clean up and exit, [a] abort without cleanup, or [r] retry" in asked[0]
    assert "'flaky' failed: transient" in asked[0]


def test_a_digest_memo_that_cannot_be_written_only_costs_the_memo(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The memo is an optimisation: its folder refusing a temporary file (a full or read-only cache, which root in
    CI cannot make, hence the refusal raised as the OS would) must not fail the build that asked for a digest."""
    import tempfile

    import blake3

    from factory.build import BIG_FILE, content_digest

    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache"))
    big = tmp_path / "base.img"
    big.write_bytes(b"c" * BIG_FILE)

    def refuse(*args: object, **kwargs: object) -> tuple[int, str]:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert content_digest(big) == blake3.blake3(big.read_bytes()).hexdigest()
    assert list((tmp_path / "cache" / "digests").iterdir()) == []


def test_a_big_file_digest_is_remembered_until_the_file_changes(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import blake3

    from factory.build import BIG_FILE, content_digest

    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache"))
    big = tmp_path / "base.img"
    big.write_bytes(b"a" * BIG_FILE)
    first = content_digest(big)
    assert first == blake3.blake3(big.read_bytes()).hexdigest()
    assert len(list((tmp_path / "cache" / "digests").iterdir())) == 1
    assert content_digest(big) == first
    stat = big.stat()
    with open(big, "r+b") as fh:  # one byte rewritten in place, the times set back: still seen
        fh.write(b"b")
    os.utime(big, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert content_digest(big) == blake3.blake3(big.read_bytes()).hexdigest() != first
