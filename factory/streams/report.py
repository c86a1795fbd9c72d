"""`--report FILE.html`: one self-contained page per run (inline CSS, screenshots as base64 PNG, no external
link), what a person opens to see why a build was slow or failed: each build's step timeline on the run's
clock (parallel builds line up), its step table, the screenshots taken, the last lines of its output and of the
serial console, the artifacts.
Every text passes through the secrets mask; the file appears atomically."""

from __future__ import annotations

import base64
import html
import time
from pathlib import Path

from factory import secrets
from factory.fsutil import atomic_path
from factory.streams.summary import BuildRecord, Results, fmt_seconds

MAX_SCREENSHOT = 8 << 20  # a larger file is linked by path instead of embedded

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
.ok{color:#1a7f37}.failed{color:#cf222e}.running{color:#9a6700}
table{border-collapse:collapse;margin:.5em 0}td,th{padding:2px 10px;text-align:left;border-bottom:1px solid #eee}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.lane{position:relative;height:18px;background:#f6f8fa;margin:1px 0}
.bar{position:absolute;top:0;height:18px;background:#54aeff;border-right:1px solid #fff;overflow:hidden;
font-size:11px;white-space:nowrap;color:#fff}
.bar.failed{background:#cf222e}.bar.cached{background:#8c959f}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}
img{max-width:100%;border:1px solid #ccc}
"""


def write_report(path: Path, results: Results) -> None:
    """Render results and write the page atomically (a reader never sees half a report)."""
    with atomic_path(path) as tmp:
        tmp.write_text(render(results), encoding="utf-8")


def render(results: Results) -> str:
    builds = list(results.builds.values())
    t0 = min((b.started or _first(b) for b in builds), default=time.time())
    t1 = max((_end(b) for b in builds), default=t0)
    span = max(t1 - t0, 1e-3)
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>factory build report</title>"
             f"<style>{CSS}</style></head><body><h1>factory build report</h1>",
             f"<p>{_e(time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(t0)))} · {len(builds)} build(s) · "
             f"{_e(fmt_seconds(t1 - t0))} wall time</p>", _overview(builds)]
    for rec in builds:
        parts.append(_build(rec, t0, span))
    parts.append("</body></html>")
    return "".join(parts)


def _e(text: str) -> str:
    return html.escape(secrets.mask(text))


def _first(rec: BuildRecord) -> float:
    return rec.steps[0].started if rec.steps else time.time()


def _end(rec: BuildRecord) -> float:
    start = rec.started or _first(rec)
    ends = [s.started + s.duration for s in rec.steps]
    return max([start + rec.duration, *ends])


def _overview(builds: list[BuildRecord]) -> str:
    rows = "".join(f"<tr><td><a href='#b{i}'>{_e(b.name)}</a></td><td class='{b.status}'>{b.status}</td>"
                   f"<td class='num'>{_e(fmt_seconds(b.duration))}</td><td>{_e(b.error)}</td></tr>"
                   for i, b in enumerate(builds))
    return f"<table><tr><th>build</th><th>result</th><th>time</th><th>error</th></tr>{rows}</table>"


def _build(rec: BuildRecord, t0: float, span: float) -> str:
    idx = f"b{hash(rec.name) & 0xffff}"
    out = [f"<h2 id='{idx}'>{_e(rec.name)} <span class='{rec.status}'>{rec.status}</span> "
           f"{_e(fmt_seconds(rec.duration))}</h2>"]
    if rec.error:
        out.append(f"<p class='failed'>{_e(rec.error)}</p>")
    out.append(_timeline(rec, t0, span))
    out.append(_steps(rec))
    for shot in rec.screenshots:
        out.append(_screenshot(Path(shot)))
    if rec.artifacts:
        items = "".join(f"<li>{_e(str(a.get('builder_id', '')))}: {_e(str(a.get('string', '')))}</li>"
                        for a in rec.artifacts)
        out.append(f"<h3>Artifacts</h3><ul>{items}</ul>")
    if rec.notices:
        out.append("<h3>Notices</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in rec.notices) + "</ul>")
    if rec.output:
        out.append(f"<h3>Output (last {len(rec.output)} lines)</h3><pre>"
                   + "\n".join(_e(line) for line in rec.output) + "</pre>")
    if rec.serial:
        out.append(f"<h3>Serial console (last {len(rec.serial)} lines)</h3><pre>"
                   + "\n".join(_e(line) for line in rec.serial) + "</pre>")
    return "".join(out)


def _timeline(rec: BuildRecord, t0: float, span: float) -> str:
    bars = []
    for s in rec.steps:
        left = 100 * (s.started - t0) / span
        width = max(100 * s.duration / span, 0.15)
        cls = "bar" + (" failed" if s.status == "failed" else "") + (" cached" if s.from_checkpoint else "")
        bars.append(f"<div class='{cls}' style='left:{left:.2f}%;width:{width:.2f}%' "
                    f"title='{_e(s.name)} {_e(fmt_seconds(s.duration))}'>{_e(s.name)}</div>")
    return f"<div class='lane'>{''.join(bars)}</div>"


def _steps(rec: BuildRecord) -> str:
    total = rec.duration or sum(s.duration for s in rec.steps) or 1.0
    rows = "".join(f"<tr><td>{_e(s.name)}</td><td>{_e(s.title)}</td><td class='{s.status}'>{s.status}</td>"
                   f"<td class='num'>{_e(fmt_seconds(s.duration))}</td><td class='num'>{s.duration / total:.0%}</td>"
                   f"<td>{'yes' if s.from_checkpoint else ''}</td></tr>" for s in rec.steps)
    return ("<table><tr><th>step</th><th>what</th><th>result</th><th>time</th><th>share</th>"
            f"<th>from checkpoint</th></tr>{rows}</table>")


def _screenshot(path: Path) -> str:
    try:
        data = path.read_bytes() if path.stat().st_size <= MAX_SCREENSHOT else b""
    except OSError:
        return f"<p>screenshot {_e(str(path))} (no longer there)</p>"
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        return f"<p>screenshot: {_e(str(path))}</p>"
    return (f"<h3>Screenshot</h3><p>{_e(str(path))}</p>"
            f"<img alt='screenshot' src='data:image/png;base64,{base64.b64encode(data).decode()}'>")
