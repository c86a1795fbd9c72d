"""One job on a worker: fetch and unpack the bundle, run `factory build --events -` on it in a child
process (the same code path as a local build), stream its events, upload what it made.

The child is a process-group leader with a parent-death signal: if the worker dies, even by SIGKILL, the kernel
sends the build SIGTERM, and the build's own cleanups stop its VM (QEMU in turn dies with the build). Cancelling
sends the group SIGTERM too, and SIGKILL after a grace period. While the build runs the job row is watched: a
job that was taken away from this worker (found stalled and retried elsewhere) is stopped here, so one job never
runs on two workers at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory import ui
from factory.errors import FactoryError
from factory.events import EventKind
from factory.queue import blobs, bundle, db
from factory.queue.events import EventSink
from factory.queue.seal import SECRET_VARS_ENV

if TYPE_CHECKING:
    import procrastinate
    from procrastinate.job_context import JobContext

OWNERSHIP_EVERY = 2.0


@dataclass(frozen=True)
class WorkerConfig:
    """What every job of one worker process shares (the task receives it in the job context)."""

    db_url: str
    name: str
    workdir: Path
    store_url: str | None = None
    stop_grace: float = 60.0          # SIGTERM → SIGKILL: long enough for a build's cleanups to stop its VM
    extra_env: dict[str, str] = field(default_factory=dict)
    key_files: tuple[Path, ...] = ()  # the queue's private key(s): open the jobs' sealed secrets


def register(app: procrastinate.App) -> None:
    """The build task on app (queues are chosen per job at submit time)."""
    app.task(name=db.TASK, pass_context=True, retry=False)(build_job)


def build_job(context: JobContext, /, **args: Any) -> dict[str, Any]:
    cfg: WorkerConfig = context.additional_context["factory"]
    job = context.job
    assert job.id is not None
    return Runner(cfg, job.id, job.attempts, args, context.should_abort).run()


def _term_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the worker dies (PR_SET_PDEATHSIG), so the build cleans up its VM."""
    libc = ctypes.util.find_library("c")
    if libc:
        ctypes.CDLL(libc, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


class Aborted(Exception):
    """The build was stopped: cancelled, or the job was taken away from this worker."""


class Runner:
    def __init__(self, cfg: WorkerConfig, job_id: int, attempt: int, args: dict[str, Any],
                 should_abort: Any) -> None:
        self.cfg, self.job_id, self.attempt, self.args = cfg, job_id, attempt, args
        self.should_abort = should_abort
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.owner: int | None = None

    def run(self) -> dict[str, Any]:
        from procrastinate.exceptions import JobAborted

        sink = EventSink(self.cfg.db_url, self.job_id, self.attempt)
        self.cfg.workdir.mkdir(parents=True, exist_ok=True)
        # One folder per job, the same for every attempt: paths the template sees (the bundle's file inputs) stay
        # equal, so a retry's stage IDs match its first attempt's and a resume can find the stored checkpoints.
        # No two attempts of a job run at once, and what a killed attempt left behind is removed first.
        work = self.cfg.workdir / f"job-{self.job_id}"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        ui.info(f"job {self.job_id}: {self.args.get('name', '')} (attempt {self.attempt + 1})")
        try:
            sink.worker(f"job {self.job_id} taken by worker {self.cfg.name} (attempt {self.attempt + 1})")
            # The job was taken just now, but the database may be restarting: wait for it rather than fail.
            self.owner = db.retrying(self._owner)
            db.retrying(lambda: self._record_run(None))
            try:
                root, before = db.retrying(lambda: self._unpack(work))
                code = self._build(root, sink)
            except FactoryError as exc:  # e.g. the job's secrets do not open here: say why in its log
                sink.worker(exc.render(), EventKind.NOTICE)
                self._record_run("failed")
                raise
            if code != 0:
                tail = "\n".join(self.stderr_tail) or f"factory build exited with {code}"
                sink.worker(f"build failed (exit {code}); its last lines:\n{tail}", EventKind.NOTICE)
                self._record_run("failed")
                raise FactoryError(f"job {self.job_id}: build failed: {tail}")
            done = self._upload(work, root, before, sink)
            self._record_run("succeeded")
            return done
        except Aborted as exc:
            sink.worker(f"build stopped: {exc}", EventKind.NOTICE)
            self._record_run("stopped")
            raise JobAborted(str(exc)) from None
        finally:
            sink.close()
            shutil.rmtree(work, ignore_errors=True)

    def _record_run(self, outcome: str | None) -> None:
        """factory_job_runs: which worker ran which attempt, when (best effort once the build ran); the worker's
        own log (its journal under systemd) gets the outcome too."""
        if outcome is not None:
            ui.info(f"job {self.job_id}: {outcome}")
        try:
            with db.connection(self.cfg.db_url) as conn:
                if outcome is None:
                    conn.execute("INSERT INTO factory_job_runs (job_id, attempt, worker) VALUES (%s, %s, %s) "
                                 "ON CONFLICT DO NOTHING", (self.job_id, self.attempt, self.cfg.name))
                else:
                    conn.execute("UPDATE factory_job_runs SET ended = now(), outcome = %s WHERE job_id = %s "
                                 "AND attempt = %s", (outcome, self.job_id, self.attempt))
        except FactoryError:
            if outcome is None:
                raise

    # --- steps -----------------------------------------------------------------------------------------------------

    def _unpack(self, work: Path) -> tuple[Path, set[Path]]:
        store = blobs.open_store(self.cfg.db_url, self.cfg.store_url)
        tar = work / "bundle.tar"
        store.get(self.args["bundle"], tar)
        root = work / "b"
        bundle.unpack(tar, root)
        tar.unlink()
        self._place_sealed_files(root)  # before the listing: they are inputs, never uploaded as results
        return root, bundle.bundle_files(root)

    def _place_sealed_files(self, root: Path) -> None:
        """A template folder's *.auto.pkrvars.* that hold secrets travel sealed: opened into their place (0600;
        the work folder goes when the job ends), where the build reads them as on the submitter's host."""
        from factory.queue import seal

        sealed = self.args.get("sealed_files") or []
        if not sealed:
            return
        key = self._key()
        for f in sealed:
            dest = (root / f["path"]).resolve()
            if not dest.is_relative_to(root.resolve() / "template"):
                raise FactoryError(f"job {self.job_id}: refusing sealed file path {f['path']!r}")
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(seal.open_sealed(key, f"file:{f['path']}", f["sealed"]))

    def _key(self) -> dict[str, object]:
        from factory.queue import seal

        if not self.cfg.key_files:
            raise FactoryError(f"job {self.job_id} carries sealed secrets and this worker has no queue key",
                               hint=f"set {seal.KEY_ENV} to the private key `factory queue key` wrote")
        return seal.load_keyring(self.cfg.key_files)

    def command(self, root: Path, secret_dir: Path | None = None) -> list[str]:
        """`factory build` as the user would type it, with the bundle's copies of var files and file inputs (the
        sealed var files opened into secret_dir; sealed -var values go through the environment, see _secret_env)."""
        argv = [sys.executable, "-m", "factory", "build", "--events", "-"]  # JSON events on stdout
        for v in self.args.get("vars") or []:
            argv += ["--var", v]
        for name, rel in sorted((self.args.get("inputs") or {}).items()):
            argv += ["--var", f"{name}={root / rel}"]
        for vf in self.args.get("var_files") or []:
            if isinstance(vf, dict):
                assert secret_dir is not None
                argv += ["--var-file", str(secret_dir / vf["name"])]
            else:
                argv += ["--var-file", str(root / vf)]
        for o in self.args.get("only") or []:
            argv += ["--only", o]
        for e in self.args.get("except_") or []:
            argv += ["--except", e]
        return [*argv, str(root / self.args["template"])]

    def _sealed(self) -> bool:
        return bool(self.args.get("secret_vars")) or any(isinstance(f, dict) for f in self.args.get("var_files") or [])

    def _open_secrets(self, secret_dir: Path) -> dict[str, str]:
        """The job's sealed values, opened with this worker's queue key: var files into secret_dir (0600, in memory
        where /dev/shm exists, removed when the build ends), -var values as the environment entry `factory build`
        takes them from (never the argv, which every user of the host can read in /proc)."""
        from factory.queue import seal

        key = self._key()
        for vf in self.args.get("var_files") or []:
            if isinstance(vf, dict):
                plain = seal.open_sealed(key, f"var-file:{vf['name']}", vf["sealed"])
                fd = os.open(secret_dir / vf["name"], os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as fh:
                    fh.write(plain)
        items = [f"{v['name']}={seal.open_sealed(key, 'var:' + v['name'], v['value']).decode()}"
                 for v in self.args.get("secret_vars") or []]
        return {SECRET_VARS_ENV: json.dumps(items)} if items else {}

    def _build(self, root: Path, sink: EventSink) -> int:
        if not self._sealed():
            return self._run_build(root, sink, None, {})
        shm = Path("/dev/shm")
        with tempfile.TemporaryDirectory(prefix=f"factory-job-{self.job_id}-",
                                         dir=shm if shm.is_dir() and os.access(shm, os.W_OK) else None) as tmp:
            return self._run_build(root, sink, Path(tmp), self._open_secrets(Path(tmp)))

    def _run_build(self, root: Path, sink: EventSink, secret_dir: Path | None, secret_env: dict[str, str]) -> int:
        template = root / self.args["template"]
        cwd = template if template.is_dir() else template.parent  # relative paths resolve in the template folder
        env = {**os.environ, **self.cfg.extra_env, "FACTORY_JOB_ID": str(self.job_id), **secret_env}
        proc = subprocess.Popen(self.command(root, secret_dir), cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                preexec_fn=_term_with_parent)
        readers = [threading.Thread(target=self._pump_events, args=(proc, sink), daemon=True),
                   threading.Thread(target=self._pump_stderr, args=(proc, sink), daemon=True)]
        for t in readers:
            t.start()
        try:
            reason = self._watch(proc)
            if reason:
                sink.worker(f"{reason}: stopping the build (SIGTERM; its cleanups stop the VM)", EventKind.NOTICE)
                self._stop(proc)
                raise Aborted(reason)
        finally:
            if proc.poll() is None:  # an exception in the worker itself: never leave the build behind
                self._stop(proc)
            for t in readers:
                t.join(timeout=10)
        return proc.returncode

    def _watch(self, proc: subprocess.Popen[bytes]) -> str:
        """Wait for the build; the reason to stop it early, or "" when it ended by itself."""
        last_check = time.monotonic()
        while proc.poll() is None:
            time.sleep(0.2)
            if self.should_abort():
                return "cancelled"
            if time.monotonic() - last_check >= OWNERSHIP_EVERY:
                last_check = time.monotonic()
                lost = self._lost()
                if lost:
                    return lost
        return ""

    def _stop(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=self.cfg.stop_grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _pump_events(self, proc: subprocess.Popen[bytes], sink: EventSink) -> None:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode(errors="replace").strip()
            if not line:
                continue
            try:
                data = json.loads(line)
            except ValueError:
                data = {"time": round(time.time(), 3), "type": "output", "build": "", "source": "stdout",
                        "message": line}
            sink.add(data)

    def _pump_stderr(self, proc: subprocess.Popen[bytes], sink: EventSink) -> None:
        """The human log on stderr repeats the events; only its end is kept, for a failure's message (an error
        before any build starts, such as a template that does not load here, is only there)."""
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)

    # --- the job row -----------------------------------------------------------------------------------------------

    def _row(self) -> tuple[str, int | None] | None:
        with db.connection(self.cfg.db_url) as conn:
            row = conn.execute("SELECT status::text, worker_id FROM procrastinate_jobs WHERE id = %s",
                               (self.job_id,)).fetchone()
        return (str(row[0]), row[1]) if row else None  # type: ignore[return-value]

    def _owner(self) -> int | None:
        row = self._row()
        return row[1] if row else None

    def _lost(self) -> str:
        """Why this worker no longer owns the job ("" while it does, or while the database does not answer)."""
        try:
            row = self._row()
        except FactoryError:
            return ""
        if row is None:
            return "the job was deleted"
        status, worker = row
        if status != "doing" or worker != self.owner:
            return f"the job was taken away from this worker (now {status}, worker {worker})"
        return ""

    # --- results ---------------------------------------------------------------------------------------------------

    def _upload(self, work: Path, root: Path, before: set[Path], sink: EventSink) -> dict[str, Any]:
        """Store every file the build made (outputs, the Packer manifest) and the job's manifest."""
        store = blobs.open_store(self.cfg.db_url, self.cfg.store_url)
        made = sorted(p for p in bundle.bundle_files(root) - before)
        files = []
        for path in made:
            key = db.retrying(lambda p=path: store.put(p))  # type: ignore[misc]
            files.append({"path": path.relative_to(root / "template").as_posix()
                          if path.is_relative_to(root / "template") else path.relative_to(root).as_posix(),
                          "sha256": key, "size": path.stat().st_size})
        manifest = {"job": self.job_id, "attempt": self.attempt + 1, "worker": self.cfg.name,
                    "bundle": self.args["bundle"], "template": self.args["template"], "files": files,
                    "finished": time.time()}
        man_path = work / "manifest.json"
        man_path.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        manifest_key = db.retrying(lambda: store.put(man_path))
        self._save_result(manifest | {"manifest_key": manifest_key})
        total = sum(int(str(f["size"])) for f in files)
        sink.worker(f"uploaded {len(files)} file(s), {total} bytes, and the manifest {manifest_key[:16]}")
        return {"manifest": manifest_key, "files": len(files)}

    def _save_result(self, manifest: dict[str, Any]) -> None:
        def save() -> None:  # a database restart at the very end must not lose a finished build
            with db.connection(self.cfg.db_url) as conn:
                conn.execute("INSERT INTO factory_job_results (job_id, manifest) VALUES (%s, %s) "
                             "ON CONFLICT (job_id) DO UPDATE SET manifest = excluded.manifest",
                             (self.job_id, json.dumps(manifest)))

        db.retrying(save)
