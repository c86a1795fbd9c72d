"""One event path: progress and messages from library code (checksums, downloads, exports) reach the build's
bus, so the console and the JSON monitor see the same stream; outside a terminal a progress is two lines."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from factory import events
from factory.build import EventBus, HumanMonitor, JsonMonitor, RunnerContext, Step, run_steps
from factory.post.checksum import hash_files


class Checksums(Step[RunnerContext]):
    name = "checksum"

    def __init__(self, files: list[Path]) -> None:
        self.files = files

    def run(self, ctx: RunnerContext) -> None:
        hash_files(self.files, ["sha256"])  # the real post-processor code, which knows nothing of ctx
        events.warn("a library warning")


def test_library_progress_and_warnings_reach_the_builds_bus(tmp_path: Path) -> None:
    big = tmp_path / "disk.raw"
    big.write_bytes(b"\1" * (5 << 20))
    out = io.StringIO()
    bus = EventBus()
    bus.subscribe(JsonMonitor(out))
    run_steps([Checksums([big])], RunnerContext(build_name="b.qemu.x", bus=bus))
    seen = [json.loads(line) for line in out.getvalue().splitlines()]
    mine = [e for e in seen if e["type"].startswith("progress") or e["type"] == "warning"]
    assert all(e["build"] == "b.qemu.x" for e in mine)
    assert mine[0]["type"] == "progress-started" and mine[0]["message"] == "checksumming disk.raw"
    assert mine[0]["total"] == 5 << 20 and mine[0]["unit"] == "bytes"
    end = next(e for e in mine if e["type"] == "progress-finished")
    assert end["done"] == end["total"] == 5 << 20 and "done in" in end["message"]
    assert end["source"] == mine[0]["source"]  # one task id from start to end
    assert mine[-1] == {**mine[-1], "type": "warning", "message": "a library warning"}
    # After the build, library code reports to the console again, not to the finished build's bus.
    assert events.current()[1] == ""


def test_plain_console_prints_one_line_at_start_and_one_at_end(capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr(events, "THROTTLE", 0.0)  # every advance is an event: the console prints none of them
    bus = EventBus()
    bus.subscribe(HumanMonitor())
    with events.using(bus, "b"), events.progress("download x.iso", 1000) as bar:
        for _ in range(100):
            bar.advance(10)
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and lines[0] == "==> b: download x.iso ..."
    assert lines[1].startswith("==> b: download x.iso: done in ")


def test_a_stand_alone_command_reports_through_the_default_bus(tmp_path: Path) -> None:
    """Outside a build (factory iso-build, export ...) the same events print on the console, without a name."""
    f = tmp_path / "f"
    f.write_bytes(b"x" * 10)
    code = ("from pathlib import Path; from factory import events; from factory.post.checksum import hash_files\n"
            "from factory.build import HumanMonitor; events.set_console_monitor(HumanMonitor)  # as the CLI does\n"
            f"hash_files([Path({str(f)!r})], ['sha256']); events.notice('careful')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stderr.splitlines()[0] == "checksumming f ..."
    assert "checksumming f: done in" in done.stderr and "careful" in done.stderr


def test_installing_the_console_monitor_again_does_not_print_twice() -> None:
    """The CLI installs its console monitor once per command; many commands in one process (tests, library
    users) must not stack monitors on the default bus."""
    code = ("from factory import events; from factory.build import HumanMonitor\n"
            "events.default_bus()\n"
            "for _ in range(3): events.set_console_monitor(HumanMonitor)\n"
            "events.notice('careful')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("careful") == 1, done.stderr
