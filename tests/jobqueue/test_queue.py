"""The build queue against a real PostgreSQL and real `factory worker` processes, with fast null-builder jobs:
submit/wait and artifacts, duplicates, capabilities, cancel, a SIGKILLed worker, a database restart."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.fixtures.jobqueue import Workers, factory, sql, status, submit, tagged_processes, wait_for
from tests.fixtures.postgres import Postgres


def test_queue_commands_explain_a_missing_database_or_schema(fresh_db: str, null_template: Path) -> None:
    proc = factory("jobs", "list", "--db", fresh_db)
    assert proc.returncode == 1
    assert "the queue schema is not applied" in proc.stderr and "factory queue init" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = factory("submit", "--db", "postgresql://nobody@127.0.0.1:1/none", str(null_template))
    assert proc.returncode == 1 and "cannot reach the queue database" in proc.stderr, proc.stderr
    proc = factory("jobs", "list", env={"FACTORY_DATABASE_URL": ""})
    assert proc.returncode == 1 and "no queue database given" in proc.stderr and "FACTORY_DATABASE_URL" in proc.stderr
    assert factory("queue", "init", "--db", fresh_db).returncode == 0
    again = factory("queue", "init", "--db", fresh_db)
    assert again.returncode == 0 and "already present" in again.stderr + again.stdout


def test_submit_wait_runs_on_a_worker_and_fetches_the_artifacts(workers: Workers, null_template: Path,
                                                                tmp_path: Path) -> None:
    workers.start()
    workers.start()
    proc = factory("submit", "--db", workers.url, "-var", "tag=wait1", "--wait", str(null_template), timeout=180)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    job_id = int(proc.stdout.strip().splitlines()[0])
    # The worker's build streamed its events: the same lines `factory build` prints, live.
    assert "null.job: [shell-local] START-wait1" in out, out
    assert f"job {job_id} taken by worker" in out and f"job {job_id} succeeded" in out
    fetched = factory("jobs", "fetch", str(job_id), "--db", workers.url, "--out", str(tmp_path / "got"))
    assert fetched.returncode == 0, fetched.stderr
    assert (tmp_path / "got" / "made.txt").read_text() == "made-by-wait1\n"
    shown = json.loads(factory("jobs", "show", str(job_id), "--db", workers.url).stdout)
    assert shown["status"] == "succeeded" and shown["queue"] == "any"
    assert [f["path"] for f in shown["result"]["files"]] == ["made.txt"]
    assert shown["runs"][0]["outcome"] == "succeeded"
    serving = json.loads(factory("jobs", "workers", "--json", "--db", workers.url).stdout)
    assert len(serving) == 2 and all(w["queues"] == ["tcg", "any"] and w["heartbeat_age"] < 5 for w in serving)
    listed = factory("jobs", "list", "--db", workers.url).stdout
    assert f"{job_id}  succeeded" in listed and "job.pkr.hcl" in listed
    logs = factory("jobs", "logs", str(job_id), "--db", workers.url)
    assert "START-wait1" in logs.stdout + logs.stderr


def test_the_same_template_and_vars_are_not_queued_twice_while_waiting(queue_db: str, null_template: Path) -> None:
    first = submit(queue_db, null_template, "tag=dup")
    again = factory("submit", "--db", queue_db, "-var", "tag=dup", str(null_template))
    assert again.returncode == 0
    assert int(again.stdout.strip()) == first and "already queued as job" in again.stderr
    other = submit(queue_db, null_template, "tag=other")
    assert other != first
    assert sql(queue_db, "SELECT count(*) FROM procrastinate_jobs")[0][0] == 2


def test_a_worker_without_the_capability_never_takes_the_job(workers: Workers, null_template: Path,
                                                            tmp_path: Path) -> None:
    kvm = tmp_path / "kvm"
    kvm.mkdir()
    (kvm / "k.pkr.hcl").write_text('source "qemu" "k" {\n  iso_url = "file:///nonexistent.iso"\n'
                                   '  iso_checksum = "none"\n  accelerator = "kvm"\n}\n'
                                   'build {\n  sources = ["source.qemu.k"]\n}\n')
    kvm_job = submit(workers.url, kvm / "k.pkr.hcl")
    assert sql(workers.url, "SELECT queue_name FROM procrastinate_jobs WHERE id = %s", kvm_job)[0][0] == "kvm"
    workers.start(queues="tcg")
    null_job = submit(workers.url, null_template, "tag=cap")
    wait_for(lambda: status(workers.url, null_job) == "succeeded", 60)
    time.sleep(2)  # more polling rounds than the worker needs to see a job it could take
    assert status(workers.url, kvm_job) == "todo"
    assert not sql(workers.url, "SELECT 1 FROM factory_job_runs WHERE job_id = %s", kvm_job)


def test_cancel_stops_a_running_build_within_seconds(workers: Workers, null_template: Path) -> None:
    workers.start()
    job = submit(workers.url, null_template, "tag=cancel1", "sleep=300")
    wait_for(lambda: tagged_processes("cancel1"), 60)
    t0 = time.monotonic()
    proc = factory("jobs", "cancel", str(job), "--db", workers.url)
    assert proc.returncode == 0 and "stop requested" in proc.stderr, proc.stderr
    wait_for(lambda: status(workers.url, job) in ("aborted", "cancelled", "failed"), 20)
    wait_for(lambda: not tagged_processes("cancel1"), 10)
    assert time.monotonic() - t0 < 20
    assert status(workers.url, job) == "aborted"
    logs = factory("jobs", "logs", str(job), "--db", workers.url)
    assert "cancelled: stopping the build" in logs.stdout + logs.stderr
    # A waiting job is simply cancelled, and cancelling a finished one is refused with a message.
    waiting = submit(workers.url, null_template, "tag=cancel2", "sleep=300")
    second = submit(workers.url, null_template, "tag=cancel3", "sleep=300")  # waits behind cancel2
    wait_for(lambda: status(workers.url, waiting) == "doing", 30)
    assert factory("jobs", "cancel", str(second), "--db", workers.url).returncode == 0
    assert status(workers.url, second) == "cancelled"
    again = factory("jobs", "cancel", str(second), "--db", workers.url)
    assert again.returncode == 1 and "already cancelled" in again.stderr
    factory("jobs", "cancel", str(waiting), "--db", workers.url)
    wait_for(lambda: not tagged_processes("cancel2"), 20)
    # A cancelled job can be queued again.
    retried = factory("jobs", "retry", str(second), "--db", workers.url)
    assert retried.returncode == 0, retried.stderr
    new = int(retried.stdout.strip())
    assert new != second and status(workers.url, new) in ("todo", "doing")
    factory("jobs", "cancel", str(new), "--db", workers.url)
    wait_for(lambda: not tagged_processes("cancel3"), 20)


def test_a_sigkilled_worker_leaves_nothing_running_and_its_job_is_retried_on_another(
        workers: Workers, null_template: Path) -> None:
    # Both workers serve before the job is queued, and the one that took it is killed. (A second worker started
    # while the job ran can take longer than the job's 4 s to serve on a loaded host, where importing factory alone
    # can take 4 s: the job would finish on the first worker before the kill.) Its run row is written before the
    # build starts, so it names the taker by now.
    pair = [workers.start(), workers.start()]
    job = submit(workers.url, null_template, "tag=kill1", "sleep=4")
    wait_for(lambda: tagged_processes("kill1"), 60)
    taker = sql(workers.url, "SELECT worker FROM factory_job_runs WHERE job_id = %s AND attempt = 0", job)[0][0]
    first, second = pair if taker.endswith(pair[0].name_suffix) else pair[::-1]
    assert taker.endswith(first.name_suffix), (taker, [w.name_suffix for w in pair])
    os.kill(first.proc.pid, signal.SIGKILL)
    # The build dies with its worker (parent-death signal): nothing of it keeps running.
    wait_for(lambda: not tagged_processes("kill1"), 10)
    # Found stalled by heartbeat, retried once, run to the end by the other worker; never two at once.
    most = 0
    deadline = time.monotonic() + 90
    while status(workers.url, job) != "succeeded" and time.monotonic() < deadline:
        most = max(most, len(tagged_processes("kill1")))
        time.sleep(0.1)
    assert status(workers.url, job) == "succeeded", second.output()
    assert most <= 1
    runs = sql(workers.url, "SELECT attempt, worker, outcome FROM factory_job_runs WHERE job_id = %s ORDER BY attempt",
               job)
    assert [r[0] for r in runs] == [0, 1]
    assert runs[0][1].endswith(first.name_suffix) and runs[0][2] is None  # it never finished there
    assert runs[1][1].endswith(second.name_suffix) and runs[1][2] == "succeeded"
    logs = factory("jobs", "logs", str(job), "--db", workers.url)
    text = logs.stdout + logs.stderr
    assert "stopped answering" in text and "retrying it on another worker" in text, text
    assert "(attempt 1)" in text and "(attempt 2)" in text


def test_workers_ride_out_a_database_restart_and_nothing_is_lost(workers: Workers, null_template: Path,
                                                                 postgres: Postgres) -> None:
    a, b = workers.start(stalled_after=15), workers.start(stalled_after=15)
    jobs = [submit(workers.url, null_template, f"tag=restart{i}", "sleep=5") for i in range(4)]
    wait_for(lambda: any(tagged_processes(f"restart{i}") for i in range(4)), 60)
    postgres.restart(down_for=2)
    wait_for(lambda: all(status(workers.url, j) == "succeeded" for j in jobs), 120,
             lambda: a.output()[-2000:] + b.output()[-2000:])
    assert a.proc.poll() is None and b.proc.poll() is None  # both still serving
    for i, j in enumerate(jobs):
        proc = factory("jobs", "logs", str(j), "--db", workers.url)
        logs = proc.stdout + proc.stderr
        assert f"START-restart{i}" in logs and "build finished" in logs, logs
    # Nothing ran twice: one attempt per job.
    assert sql(workers.url, "SELECT count(*) FROM factory_job_runs")[0][0] == 4
    after = submit(workers.url, null_template, "tag=after")
    wait_for(lambda: status(workers.url, after) == "succeeded", 60)


def test_a_failed_build_fails_its_job_with_the_reason(workers: Workers, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "bad.pkr.hcl").write_text('source "null" "bad" {\n  communicator = "none"\n}\n'
                                        'build {\n  sources = ["source.null.bad"]\n'
                                        '  provisioner "shell-local" {\n    inline = ["echo BROKEN-STEP", "exit 3"]\n'
                                        '  }\n}\n')
    workers.start()
    proc = factory("submit", "--db", workers.url, "--wait", str(folder), timeout=180)
    assert proc.returncode == 1, proc.stderr
    job = int(proc.stdout.strip().splitlines()[0])
    assert f"job {job} failed" in proc.stderr and "BROKEN-STEP" in proc.stderr
    assert "build failed (exit 1)" in proc.stderr and "Traceback" not in proc.stderr
    assert status(workers.url, job) == "failed"
    none = factory("jobs", "fetch", str(job), "--db", workers.url, "--out", str(tmp_path / "none"))
    assert none.returncode == 1 and "has no results" in none.stderr


def test_bundles_and_artifacts_in_an_s3_bucket(workers: Workers, null_template: Path, tmp_path: Path) -> None:
    """FACTORY_STORE_URL=s3://…: moto's real S3 server stands in for the bucket."""
    import socket
    import subprocess
    import sys

    import boto3

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
               "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_EC2_METADATA_DISABLED": "true",
               "AWS_CONFIG_FILE": str(tmp_path / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"),
               "FACTORY_STORE_URL": "s3://builds/factory"}
        wait_for(lambda: _answers(port), 30)
        s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket="builds")
        workers.start(env=env)
        proc = factory("submit", "--db", workers.url, "-var", "tag=s3", "--wait", str(null_template), env=env,
                       timeout=180)
        assert proc.returncode == 0, proc.stderr
        job = int(proc.stdout.strip().splitlines()[0])
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket="builds")["Contents"]}
        assert len(keys) == 3 and all(k.startswith("factory/") for k in keys)  # bundle, made.txt, manifest
        assert sql(workers.url, "SELECT count(*) FROM factory_blobs")[0][0] == 0  # nothing in the database
        got = factory("jobs", "fetch", str(job), "--db", workers.url, "--out", str(tmp_path / "got"), env=env)
        assert got.returncode == 0, got.stderr
        assert (tmp_path / "got" / "made.txt").read_text() == "made-by-s3\n"
    finally:
        moto.terminate()
        moto.wait(10)


def _answers(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_worker_refuses_queues_its_host_cannot_serve(queue_db: str, tmp_path: Path) -> None:
    env = {"PATH": f"{tmp_path}:/usr/bin:/bin", "FACTORY_LIBVIRT_URI": "test:///nonexistent-driver"}
    proc = factory("worker", "--db", queue_db, "--queues", "virtualbox", env=env)
    assert proc.returncode == 1 and "cannot serve the virtualbox queue: VBoxManage is not on PATH" in proc.stderr
    proc = factory("worker", "--db", queue_db, "--queues", "tcg,gpu")
    assert proc.returncode == 1 and "unknown queue(s): gpu" in proc.stderr
    proc = factory("worker", "--db", queue_db, "--queues", "libvirt", env=env)
    assert proc.returncode == 1 and "cannot serve the libvirt queue" in proc.stderr, proc.stderr
