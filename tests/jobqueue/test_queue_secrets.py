"""Secrets through the queue (real PostgreSQL, real workers): a sensitive -var, a var file and a template folder's
*.auto.pkrvars.hcl that set a sensitive variable are sealed to the queue key; the database (every table and
large object), `jobs show`, `jobs logs` and the processes' command lines never hold them in clear text, and the
build still gets the real values."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import stat
import subprocess
from pathlib import Path

from tests.fixtures.jobqueue import Workers, factory, sql, status, tagged_processes, wait_for

PASSWORD = "S3cr3t-Queue-Pass-7781"
TOKEN = "tok-Zq81-very-secret"
AUTO = "AUTO-Secret-Key-555"

TEMPLATE = """
variable "pw" {
  type      = string
  sensitive = true
}
variable "token" {
  type      = string
  default   = ""
  sensitive = true
}
variable "apikey" {
  type      = string
  default   = ""
  sensitive = true
}
variable "tag" {
  type    = string
  default = "none"
}
variable "sleep" {
  type    = string
  default = "0"
}
source "null" "job" {
  communicator = "none"
}
build {
  sources = ["source.null.job"]
  provisioner "shell-local" {
    inline = ["echo PW-${sha256(var.pw)} TOKEN-${sha256(var.token)} AUTO-${sha256(var.apikey)} PLAIN-${var.tag}",
              "sh -c 'sleep ${var.sleep}; true' factory-queue-test-${var.tag}"]
  }
}
"""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def database_holds(url: str, *needles: str) -> list[str]:
    """Where any needle occurs in the database: every row of every table (as text) and every large object."""
    found = []
    tables = [r[0] for r in sql(url, "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) "
                                     "FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")]
    for table in tables:
        for (row,) in sql(url, f"SELECT t::text FROM {table} t"):  # names from pg_tables
            found += [f"{table}: {n}" for n in needles if n in row]
    for oid, data in sql(url, "SELECT oid, lo_get(oid) FROM pg_largeobject_metadata"):
        found += [f"large object {oid}: {n}" for n in needles if n.encode() in bytes(data)]
    return found


def command_lines_holding(needle: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if needle.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def test_secrets_are_sealed_in_the_queue_and_opened_only_by_a_worker_with_the_key(
        workers: Workers, tmp_path: Path) -> None:
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "job.pkr.hcl").write_text(TEMPLATE)
    (folder / "creds.auto.pkrvars.hcl").write_text(f'apikey = "{AUTO}"\n')
    varfile = tmp_path / "secrets.pkrvars.hcl"
    varfile.write_text(f'token = "{TOKEN}"\n')
    submit = ["submit", "--db", workers.url, "-var", f"pw={PASSWORD}", "-var-file", str(varfile)]

    # No queue key yet: refused with the fix, before anything is stored.
    refused = factory(*submit, "-var", "tag=nokey", str(folder))
    assert refused.returncode == 1 and "no key to seal secrets" in refused.stderr, refused.stderr
    assert "factory queue key" in refused.stderr and "Traceback" not in refused.stderr
    assert sql(workers.url, "SELECT count(*) FROM procrastinate_jobs")[0][0] == 0
    assert sql(workers.url, "SELECT count(*) FROM factory_blobs")[0][0] == 0

    key = tmp_path / "queue.key"
    made = factory("queue", "key", str(key), "--db", workers.url)
    assert made.returncode == 0, made.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600

    # A worker without the private key cannot open the job: it fails, saying why (and nothing leaks).
    keyless = workers.start()
    proc = factory(*submit, "-var", "tag=keyless", str(folder))
    assert proc.returncode == 0, proc.stderr
    first = int(proc.stdout.strip().splitlines()[-1])
    wait_for(lambda: status(workers.url, first) == "failed", 60, keyless.output)
    logs = factory("jobs", "logs", str(first), "--db", workers.url)
    assert "carries sealed secrets and this worker has no queue key" in logs.stdout + logs.stderr
    os.killpg(keyless.proc.pid, signal.SIGTERM)
    keyless.proc.wait(30)

    # A worker holding the key runs the build with the real values; they reach no command line.
    workers.start(env={"FACTORY_QUEUE_KEY_FILE": str(key)})
    proc = factory(*submit, "-var", "tag=sealed", "-var", "sleep=3", str(folder))
    assert proc.returncode == 0, proc.stderr
    job = int(proc.stdout.strip().splitlines()[-1])
    wait_for(lambda: tagged_processes("sealed"), 60)
    assert not any(command_lines_holding(v) for v in (PASSWORD, TOKEN, AUTO))
    wait_for(lambda: status(workers.url, job) == "succeeded", 60)

    logs = factory("jobs", "logs", str(job), "--db", workers.url)
    text = logs.stdout + logs.stderr
    # The build got the real values (their hashes printed), and the opened auto var file was not uploaded.
    assert f"PW-{_sha(PASSWORD)} TOKEN-{_sha(TOKEN)} AUTO-{_sha(AUTO)} PLAIN-sealed" in text, text
    shown = factory("jobs", "show", str(job), "--db", workers.url).stdout
    assert "pw=<sealed>" in shown and "tag=sealed" in shown and "secrets.pkrvars.hcl <sealed>" in shown, shown
    assert json.loads(shown)["result"]["files"] == []
    for out in (text, shown, proc.stdout + proc.stderr):
        assert PASSWORD not in out and TOKEN not in out and AUTO not in out
    assert database_holds(workers.url, PASSWORD, TOKEN, AUTO) == []
    # The scan does look into every row and the bundles: plain values and the template are found there.
    control = database_holds(workers.url, "tag=sealed", "sha256(var.pw)")
    assert any("procrastinate_jobs" in c for c in control) and any("large object" in c for c in control), control


def test_submits_that_differ_only_in_a_secret_are_one_waiting_job(queue_db: str, tmp_path: Path) -> None:
    """The queueing lock counts a sealed value by its name (a hash of it would let a database reader test
    guesses): the second submit is the waiting job's duplicate; a different plain value is a new job."""
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "job.pkr.hcl").write_text(TEMPLATE)
    assert factory("queue", "key", str(tmp_path / "queue.key"), "--db", queue_db).returncode == 0

    def submit(*vars: str) -> subprocess.CompletedProcess[str]:
        args = [a for v in vars for a in ("-var", v)]
        proc = factory("submit", "--db", queue_db, *args, str(folder))
        assert proc.returncode == 0, proc.stderr
        return proc

    first = submit(f"pw={PASSWORD}", "tag=one")
    again = submit("pw=another-Secret-123", "tag=one")
    assert int(again.stdout.split()[-1]) == int(first.stdout.split()[-1]) and "already queued" in again.stderr
    other = submit(f"pw={PASSWORD}", "tag=two")
    assert int(other.stdout.split()[-1]) != int(first.stdout.split()[-1])
    assert database_holds(queue_db, PASSWORD, "another-Secret-123") == []


def test_a_sensitive_variable_naming_a_local_file_is_refused(queue_db: str, tmp_path: Path) -> None:
    """Its content would travel in the bundle: the submit says so and queues nothing."""
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "job.pkr.hcl").write_text(TEMPLATE)
    keyfile = tmp_path / "id_ed25519"
    keyfile.write_text("PRIVATE-KEY-MATERIAL\n")
    proc = factory("submit", "--db", queue_db, "-var", f"pw={keyfile}", str(folder))
    assert proc.returncode == 1, proc.stderr
    assert "variable 'pw' is sensitive and names a local file" in proc.stderr and "Traceback" not in proc.stderr
    assert sql(queue_db, "SELECT count(*) FROM procrastinate_jobs")[0][0] == 0
    assert database_holds(queue_db, "PRIVATE-KEY-MATERIAL") == []
