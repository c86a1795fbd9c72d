"""The other monitors of the one bus: --events JSON lines, Prometheus metrics (file and 127.0.0.1 port), the
step table and the self-contained --report page; secrets never reach any of them."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from factory import secrets
from factory.events import Event, EventBus, EventKind
from factory.streams.metrics import Metrics
from factory.streams.report import render
from factory.streams.summary import Results, step_table

SECRET = "pa55-w0rd-xyz"

TEMPLATE = f"""
variable "token" {{
  type      = string
  default   = "{SECRET}"
  sensitive = true
}}
source "null" "good" {{ communicator = "none" }}
source "null" "bad" {{ communicator = "none" }}
build {{
  sources = ["source.null.good", "source.null.bad"]
  provisioner "shell-local" {{
    inline = ["echo token is ${{var.token}}", "test ${{source.name}} = good || {{ echo failing; exit 4; }}"]
  }}
}}
"""


def _factory(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp / "t.pkr.hcl").write_text(TEMPLATE)
    return subprocess.run([sys.executable, "-m", "factory", "build", *args, "t.pkr.hcl"], cwd=tmp,
                          env={**os.environ, "COLUMNS": "300"}, capture_output=True, text=True, timeout=180)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def test_events_metrics_and_report_from_one_run_without_secrets(tmp_path: Path) -> None:
    proc = _factory(tmp_path, "--events", "ev.jsonl", "--metrics-file", "m.prom", "--report", "r.html")
    assert proc.returncode == 1, proc.stderr
    raw = (tmp_path / "ev.jsonl").read_text()
    evs = [json.loads(line) for line in raw.splitlines()]
    done = [e for e in evs if e["type"] == "step-finished"]
    assert done and all(e["from_checkpoint"] is False and e["duration"] >= 0 for e in done)
    assert {e["build"] for e in evs if e["type"] == "build-failed"} == {"null.bad"}
    metrics = _samples((tmp_path / "m.prom").read_text())
    assert metrics[("factory_builds_total", (("result", "ok"),))] == 1
    assert metrics[("factory_builds_total", (("result", "failed"),))] == 1
    assert metrics[("factory_builds_running", ())] == 0
    key = ("factory_step_duration_seconds",
           (("build", "null.good"), ("from_checkpoint", "false"), ("result", "ok"), ("step", "provision-1")))
    assert key in metrics
    page = (tmp_path / "r.html").read_text()
    assert "null.good" in page and "null.bad" in page and "class='lane'" in page and "failing" in page
    assert "<link" not in page and "<script" not in page and "src='http" not in page  # self-contained
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    for text in (raw, page, (tmp_path / "m.prom").read_text(), proc.stderr):
        assert SECRET not in text
    assert "token is <sensitive>" in raw


def test_a_report_path_that_cannot_be_written_is_refused_before_any_build_runs(tmp_path: Path) -> None:
    (tmp_path / "pages").mkdir()
    proc = _factory(tmp_path, "--events", "ev.jsonl", "--report", "pages")
    assert proc.returncode == 1
    assert "--report pages is a folder" in proc.stderr and "pages/report.html" in proc.stderr
    assert "Traceback" not in proc.stderr and "token is" not in proc.stdout + proc.stderr
    assert not (tmp_path / "ev.jsonl").exists()  # refused before the builds (and their streams) started
    assert list((tmp_path / "pages").iterdir()) == []
    os.mkfifo(tmp_path / "pipe")  # /dev/null, for root, is the real case: the rename made it a regular file
    proc = _factory(tmp_path, "--report", "pipe")
    assert proc.returncode == 1 and "--report pipe is not a regular file" in proc.stderr, proc.stderr
    assert (tmp_path / "pipe").is_fifo() and "token is" not in proc.stdout + proc.stderr


def _png(path: Path) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0\xff\0\0")) + chunk(b"IEND", b""))
    path.write_bytes(data)
    return data


def test_report_embeds_screenshots_and_the_serial_tail_masked(tmp_path: Path) -> None:
    shot = _png(tmp_path / "screen.png")
    secrets.register(SECRET)
    try:
        results = Results()
        for ev in [Event(EventKind.BUILD_STARTED, "qemu.x", time=100.0),
                   Event(EventKind.STEP_STARTED, "qemu.x", "Booting", step="boot", time=100.0),
                   Event(EventKind.OUTPUT, "qemu.x", f"login: root password {SECRET}", source="serial"),
                   Event(EventKind.OUTPUT, "qemu.x", "<script>alert(1)</script>", source="serial"),
                   Event(EventKind.STEP_FAILED, "qemu.x", "ssh timeout", step="boot", duration=30.0, time=130.0),
                   Event(EventKind.NOTICE, "qemu.x", "kept for diagnosis", data={"screenshot": str(tmp_path /
                                                                                              "screen.png")}),
                   Event(EventKind.BUILD_FAILED, "qemu.x", "ssh timeout", duration=30.0, time=130.0)]:
            results(ev)
        page = render(results)
    finally:
        secrets.clear()
    assert f"data:image/png;base64,{base64.b64encode(shot).decode()}" in page
    assert SECRET not in page and "password &lt;sensitive&gt;" in page
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_step_table_marks_steps_restored_from_a_checkpoint() -> None:
    results = Results()
    results(Event(EventKind.STEP_FINISHED, "b", step="boot", duration=2.0, from_checkpoint=True))
    results(Event(EventKind.STEP_FINISHED, "b", step="provision", duration=6.0))
    results(Event(EventKind.BUILD_FINISHED, "b", duration=8.0))
    lines = step_table(results.builds["b"])
    assert lines[0].split() == ["step", "time", "share", "checkpoint"]
    assert lines[1].split() == ["boot", "2.0s", "25%", "yes"]
    assert lines[2].split() == ["provision", "6.0s", "75%"]
    assert lines[3].split() == ["total", "8.0s"]


def test_bytes_downloaded_and_exported_are_counted_by_activity(tmp_path: Path) -> None:
    metrics = Metrics(tmp_path / "m.prom")
    bus = EventBus()
    bus.subscribe(metrics)
    for done, kind in ((0, EventKind.PROGRESS_STARTED), (400, EventKind.PROGRESS), (1000, EventKind.PROGRESS),
                       (1000, EventKind.PROGRESS_FINISHED)):
        bus.emit(Event(kind, "b", source="p1", done=done, total=1000, unit="bytes", activity="download"))
    bus.emit(Event(EventKind.PROGRESS_FINISHED, "b", source="p2", done=300, total=300, unit="bytes",
                   activity="export"))
    metrics.write()
    got = _samples((tmp_path / "m.prom").read_text())
    assert got[("factory_bytes_total", (("activity", "download"), ("build", "b")))] == 1000
    assert got[("factory_bytes_total", (("activity", "export"), ("build", "b")))] == 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_metrics_port_serves_on_loopback_while_the_build_runs(tmp_path: Path) -> None:
    port = _free_port()
    (tmp_path / "t.pkr.hcl").write_text(f"""
source "null" "w" {{ communicator = "none" }}
build {{
  sources = ["source.null.w"]
  provisioner "shell-local" {{
    inline = ["i=0; while [ ! -e {tmp_path}/go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done"]
  }}
}}
""")
    proc = subprocess.Popen([sys.executable, "-m", "factory", "build", "--metrics-port", str(port), "t.pkr.hcl"],
                            cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        seen = ""
        deadline = time.monotonic() + 60
        while "factory_builds_running 1.0" not in seen and time.monotonic() < deadline:
            try:
                seen = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            except OSError:
                time.sleep(0.2)
        assert "factory_builds_running 1.0" in seen
    finally:
        (tmp_path / "go").touch()
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    with socket.socket() as s:  # the server is gone with the run
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_every_event_kind_and_metric_is_documented_and_exposed(tmp_path: Path) -> None:
    from factory.events import KIND_HELP, EventKind
    from factory.streams.metrics import METRICS

    assert set(KIND_HELP) == set(EventKind)
    metrics = Metrics(tmp_path / "m.prom")
    bus = EventBus()
    bus.subscribe(metrics)
    bus.emit(Event(EventKind.BUILD_STARTED, "b"))
    bus.emit(Event(EventKind.STEP_FINISHED, "b", step="s", duration=1.0))
    bus.emit(Event(EventKind.PROGRESS_FINISHED, "b", source="p", done=5, unit="bytes", activity="download"))
    bus.emit(Event(EventKind.BUILD_FINISHED, "b", duration=1.0))
    metrics.write()
    names = {s.name for fam in text_string_to_metric_families((tmp_path / "m.prom").read_text())
             for s in fam.samples}
    assert {m.exposed for m in METRICS} <= names
