"""Packer's -machine-readable stream: the line format and escaping of packer/ui.go's MachineReadableUi, the
end-of-run lines of its build command, golden for a fixed run; and the real CLI printing it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from factory import secrets
from factory.events import Event, EventBus, EventKind
from factory.streams.packer import MachineReadableMonitor, durafmt, escape
from factory.streams.summary import Results

T = 1700000000.0


def test_escaping_is_packers_commas_then_cr_then_lf() -> None:
    assert escape("a,b\r\nc") == "a%!(PACKER_COMMA)b\\r\\nc"
    assert escape("") == ""


def test_durations_read_like_packers_durafmt_first_two_units() -> None:
    assert durafmt(1.0) == "1 second"
    assert durafmt(65.25) == "1 minute 5 seconds"
    assert durafmt(3723.0) == "1 hour 2 minutes"
    assert durafmt(0.1504) == "150 milliseconds 400 microseconds"
    assert durafmt(0) == "0 seconds"


def _fixed_run() -> tuple[str, MachineReadableMonitor, Results]:
    out = io.StringIO()
    bus, results, mr = EventBus(), Results(), MachineReadableMonitor(out)
    bus.subscribe(results)
    bus.subscribe(mr)
    evs = [
        Event(EventKind.BUILD_STARTED, "qemu.a", "build started", time=T),
        Event(EventKind.STEP_STARTED, "qemu.a", "Creating the disk", step="disk", time=T + 1),
        Event(EventKind.OUTPUT, "qemu.a", "line one, with a comma", source="shell", time=T + 2),
        Event(EventKind.PROGRESS_STARTED, "qemu.a", "download x.iso", source="p1", total=10, unit="bytes",
              activity="download", time=T + 2),
        Event(EventKind.PROGRESS, "qemu.a", "download x.iso", source="p1", done=5, total=10, unit="bytes",
              time=T + 2),
        Event(EventKind.STEP_FINISHED, "qemu.a", "2.0s", step="disk", duration=2.0, time=T + 3),
        Event(EventKind.WARNING, "qemu.a", "multi\nline", time=T + 3),
        Event(EventKind.ARTIFACT, "qemu.a", "artifact: out/a.qcow2", time=T + 4,
              data={"builder_id": "factory.qemu", "id": "VM", "string": "out/a.qcow2, out/b,c.txt",
                    "files": ["out/a.qcow2", "out/b,c.txt"]}),
        Event(EventKind.BUILD_FINISHED, "qemu.a", "build finished after 65.0s", duration=65.0, time=T + 65),
        Event(EventKind.STEP_STARTED, "qemu.b", "Booting", step="boot", time=T + 1),
        Event(EventKind.STEP_FAILED, "qemu.b", "qemu exited\r\nwith code 1", step="boot", duration=1.5,
              time=T + 2),
        Event(EventKind.BUILD_FAILED, "qemu.b", "qemu exited, code 1", duration=1.5, time=T + 2),
    ]
    for ev in evs:
        bus.emit(ev)
    return out.getvalue(), mr, results


def test_a_run_renders_as_packers_lines(golden: Any, monkeypatch: Any) -> None:
    _, mr, results = _fixed_run()
    import factory.streams.packer as packer

    monkeypatch.setattr(packer.time, "time", lambda: T + 70)
    mr.summary(results, waited=70.0)
    full = mr.stream.getvalue()  # type: ignore[attr-defined]
    golden("streams/machine-readable.txt", full)
    for raw in full.splitlines():  # every line: integer timestamp, target, type, data
        stamp, _target, kind, *_ = raw.split(",")
        assert stamp.isdigit() and kind and "\n" not in raw
    assert "1700000070,,error-count,1" in full
    assert "1700000070,qemu.b,error,qemu exited%!(PACKER_COMMA) code 1" in full
    assert "1700000070,qemu.a,artifact,0,file,1,out/b%!(PACKER_COMMA)c.txt" in full


def test_interrupted_run_says_so_and_lists_nothing(monkeypatch: Any) -> None:
    out = io.StringIO()
    MachineReadableMonitor(out).summary(Results(), 2.0, interrupted=True)
    lines = [ln.split(",", 3)[3] for ln in out.getvalue().splitlines()]
    assert lines == ["say,\\n==> Wait completed after 2 seconds",
                     "say,Cleanly cancelled builds after being interrupted."]


def test_secrets_are_masked_in_every_field() -> None:
    secrets.register("s3cr3t-value")
    try:
        out = io.StringIO()
        MachineReadableMonitor(out)(Event(EventKind.OUTPUT, "b", "token=s3cr3t-value", source="shell", time=T))
        assert "s3cr3t-value" not in out.getvalue() and "<sensitive>" in out.getvalue()
    finally:
        secrets.clear()


NULL = """
source "null" "a" { communicator = "none" }
build {
  sources = ["source.null.a"]
  provisioner "shell-local" { inline = ["echo hello, world"] }
}
"""


def test_cli_machine_readable_is_packers_format_on_stdout(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text(NULL)
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "-machine-readable", "t.pkr.hcl"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert all(ln.split(",")[0].isdigit() for ln in lines), proc.stdout
    data = [ln.split(",", 1)[1] for ln in lines]
    assert ",ui,message,    null.a: [shell-local] hello%!(PACKER_COMMA) world" in data
    assert "null.a,artifact-count,1" in data and "null.a,artifact,0,end" in data
    assert not proc.stdout.lstrip().startswith("{")  # no JSON: that is --events now


def test_timestamp_ui_puts_the_time_inside_build_lines_as_packers_timestamped_ui(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text(NULL)
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "-machine-readable", "-timestamp-ui",
                           "t.pkr.hcl"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode == 0, proc.stderr
    import re

    said = [ln.split(",", 4)[4] for ln in proc.stdout.splitlines() if ",ui,say," in ln]
    stamped = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d: "
    assert any(re.match(stamped + "==> null.a: ", s) for s in said), said
    assert any(re.match(stamped + "Build 'null.a' finished after", s) for s in said), said
    assert "\\n==> Builds finished. The artifacts of successful builds are:" in said  # the summary is not stamped
