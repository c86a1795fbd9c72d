"""Q1: the build queue's throughput and overhead, on a real PostgreSQL (started here, in a temporary folder) with
real `factory worker` processes and short null-builder jobs (a shell-local provisioner that sleeps --work seconds,
standing in for the VM time of a real build).

1. Drain: 8 jobs are queued while no worker runs; then 1 (or 2) workers start and take them. Drain time is the
   database's own clock from the first job's start to the last job's end; throughput = jobs / drain time. Printed
   per round and as the ratio 2 workers / 1 worker.
2. Overhead: one idle worker; jobs are submitted one at a time (`factory submit`, waiting for each to finish).
   Submit → start latency (Procrastinate's `deferred` → `started` events) as median and p95, and the queued
   build's start → end against the same build run directly (`factory build`, wall time).

Run it alone on the machine: `flock /tmp/factory-vm.lock python bench/bench_queue.py [--rounds N] [--work S]`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fixtures.jobqueue import NULL_TEMPLATE  # noqa: E402
from tests.fixtures.postgres import Postgres, running_postgres  # noqa: E402

JOBS = 8
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def factory(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, "-m", "factory", *args], cwd=cwd, env=ENV, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"factory {' '.join(args)} failed:\n{proc.stderr}")
    return proc


def new_queue(pg: Postgres) -> str:
    url = pg.create_db()
    factory("queue", "init", "--db", url)
    return url


def start_workers(url: str, n: int, tmp: Path) -> list[subprocess.Popen[bytes]]:
    tmp.mkdir(parents=True, exist_ok=True)
    procs = []
    for i in range(n):
        log = open(tmp / f"w{n}-{i}.log", "wb")  # noqa: SIM115 (the worker holds it)
        env = {**ENV, "FACTORY_CACHE_DIR": str(tmp / f"cache-{i}")}
        procs.append(subprocess.Popen([sys.executable, "-m", "factory", "worker", "--db", url, "--queues", "tcg",
                                       "--heartbeat", "1"], env=env, stdout=log, stderr=subprocess.STDOUT,
                                      start_new_session=True))
    return procs


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        p.wait(timeout=60)


QUERIES = [0]  # the bench's own transactions, left out of the database load


def query(url: str, sql: str) -> list[tuple[object, ...]]:
    QUERIES[0] += 1
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def wait_all_done(url: str, n: int, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query(url, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'succeeded'")
        if rows[0][0] == n:
            return
        failed = query(url, "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('failed', 'aborted')")
        if failed[0][0]:
            raise SystemExit("a job failed; see `factory jobs logs`")
        time.sleep(0.2)
    raise SystemExit("jobs did not finish in time")


def drain(pg: Postgres, template: Path, workers: int, work: float, tmp: Path) -> float:
    """Seconds from the first start to the last end of JOBS jobs drained by `workers` workers."""
    url = new_queue(pg)
    for i in range(JOBS):
        factory("submit", "--db", url, "-var", f"tag=drain{workers}-{i}", "-var", f"sleep={work}", str(template))
    procs = start_workers(url, workers, tmp)
    try:
        wait_all_done(url, JOBS)
    finally:
        stop(procs)
    row = query(url, "SELECT extract(epoch FROM max(at) FILTER (WHERE type = 'succeeded') - "
                     "min(at) FILTER (WHERE type = 'started')) FROM procrastinate_events")
    return float(row[0][0])  # type: ignore[arg-type]


def commits(url: str) -> int:
    rows = query(url, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    return int(rows[0][0])  # type: ignore[call-overload]


def overhead(pg: Postgres, template: Path, work: float, tmp: Path) -> tuple[list[float], list[float], list[float]]:
    """Per job: submit→start latency, queued start→end, and the submit command's own wall time; prints the
    database load per job."""
    url = new_queue(pg)
    procs = start_workers(url, 1, tmp)
    time.sleep(3)  # the worker is up and waiting
    latency, run, submit_wall = [], [], []
    before, t_start, own = commits(url), time.monotonic(), QUERIES[0]
    try:
        for i in range(JOBS):
            t0 = time.monotonic()
            factory("submit", "--db", url, "-var", f"tag=over-{i}", "-var", f"sleep={work}", str(template))
            submit_wall.append(time.monotonic() - t0)
            wait_all_done(url, i + 1)
        rows = query(url, "SELECT job_id, extract(epoch FROM min(at) FILTER (WHERE type = 'started') - "
                          "min(at) FILTER (WHERE type = 'deferred')), extract(epoch FROM min(at) FILTER "
                          "(WHERE type = 'succeeded') - min(at) FILTER (WHERE type = 'started')) "
                          "FROM procrastinate_events GROUP BY job_id ORDER BY job_id")
        latency = [float(r[1]) for r in rows]  # type: ignore[arg-type]
        run = [float(r[2]) for r in rows]  # type: ignore[arg-type]
        elapsed = time.monotonic() - t_start
        time.sleep(1.5)  # backends flush their statistics at most every second
        spent = commits(url) - before - (QUERIES[0] - own)
        events = query(url, "SELECT count(*) FROM factory_job_events")[0][0]
        print(f"database load: {spent / JOBS:.0f} committed transactions per job ({spent / elapsed:.1f}/s over "
              f"{elapsed:.0f}s with 1 worker, idle polling and heartbeats included), {events / JOBS:.0f} event "
              "rows per job", flush=True)
    finally:
        stop(procs)
    return latency, run, submit_wall


def direct(template: Path, work: float, tmp: Path) -> list[float]:
    walls = []
    for i in range(JOBS):
        folder = tmp / f"direct-{i}"
        folder.mkdir(parents=True)
        t0 = time.monotonic()
        factory("build", "-var", f"tag=direct-{i}", "-var", f"sleep={work}", str(template), cwd=folder)
        walls.append(time.monotonic() - t0)
    return walls


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2, help="drain rounds per worker count")
    ap.add_argument("--work", type=float, default=3.0, help="seconds each job's provisioner sleeps")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as tmp_s, running_postgres() as pg:
        tmp = Path(tmp_s)
        template = tmp / "tpl" / "job.pkr.hcl"
        template.parent.mkdir()
        template.write_text(NULL_TEMPLATE)
        t1, t2 = [], []
        for r in range(args.rounds):
            for n, out in ((1, t1), (2, t2)):
                seconds = drain(pg, template, n, args.work, tmp / f"r{r}n{n}")
                out.append(JOBS / seconds)
                print(f"round {r + 1}: {JOBS} jobs of {args.work:g}s drained by {n} worker(s) in {seconds:.1f}s "
                      f"({JOBS / seconds * 3600:.0f} jobs/hour)", flush=True)
        ratio = statistics.median(t2) / statistics.median(t1)
        print(f"throughput 2 workers / 1 worker: {ratio:.2f}x (median of {args.rounds} rounds)")
        latency, run, submit_wall = overhead(pg, template, args.work, tmp / "over")
        walls = direct(template, args.work, tmp / "direct")
        print(f"submit -> start latency: median {statistics.median(latency):.2f}s, p95 {p95(latency):.2f}s")
        print(f"`factory submit` itself (validate, pack, store, defer): median {statistics.median(submit_wall):.2f}s")
        print(f"queued build start -> end: median {statistics.median(run):.2f}s; the same build run directly "
              f"(`factory build`): median {statistics.median(walls):.2f}s")
        print(f"queue overhead per job (latency + queued run - direct run): "
              f"{statistics.median(latency) + statistics.median(run) - statistics.median(walls):.2f}s (median)")


if __name__ == "__main__":
    main()
