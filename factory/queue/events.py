"""A job's build events in the database: the worker appends them (buffered, surviving a database restart), and
`factory jobs logs` reads them back into the same console monitor `factory build` prints with."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from factory.events import PROGRESS_KINDS, Event, EventKind
from factory.queue import db

FLUSH_EVERY = 0.25


class EventSink:
    """Events of one job attempt, written to factory_job_events by a background thread in order (seq is one
    database sequence, so attempts and the stalled-job notices of other workers interleave as they happened).
    Rows that cannot be written (the database is restarting) stay buffered and are written once it answers."""

    def __init__(self, url: str, job_id: int, attempt: int) -> None:
        self.url, self.job_id, self.attempt = url, job_id, attempt
        self._buf: list[tuple[str, dict[str, Any]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conn: Any = None
        self._thread = threading.Thread(target=self._loop, name=f"events:{job_id}", daemon=True)
        self._thread.start()

    def add(self, data: dict[str, Any]) -> None:
        with self._lock:  # the id makes a batch written twice (its commit reply was lost) count once
            self._buf.append((str(uuid.uuid4()), data))

    def worker(self, message: str, kind: EventKind = EventKind.MESSAGE) -> None:
        """A line from the worker itself (took the job, uploads, cancellation)."""
        self.add({"time": round(time.time(), 3), "type": kind.value, "build": "", "source": "worker",
                  "message": message})

    def _loop(self) -> None:
        while not self._stop.wait(FLUSH_EVERY):
            self._flush()

    def _flush(self) -> bool:
        with self._lock:
            batch = list(self._buf)
        if not batch:
            return True
        try:
            if self._conn is None or self._conn.closed:
                self._conn = db.connect(self.url)
            with self._conn.cursor() as cur:
                cur.executemany("INSERT INTO factory_job_events (eid, job_id, attempt, data) VALUES (%s, %s, %s, %s) "
                                "ON CONFLICT (eid) DO NOTHING",
                                [(eid, self.job_id, self.attempt, json.dumps(d)) for eid, d in batch])
        except Exception:  # the database is away: keep the rows, try again on the next tick
            with contextlib.suppress(Exception):
                if self._conn is not None:
                    self._conn.close()
            self._conn = None
            return False
        with self._lock:
            del self._buf[:len(batch)]
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Write what is buffered (retrying up to timeout while the database is away) and stop."""
        self._stop.set()
        self._thread.join()
        deadline = time.monotonic() + timeout
        while not self._flush() and time.monotonic() < deadline:
            time.sleep(0.5)
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()


def to_event(data: dict[str, Any]) -> Event | None:
    """An Event from its JSON form (None for a kind this factory does not know)."""
    try:
        kind = EventKind(data.get("type", ""))
    except ValueError:
        return None
    extra: dict[str, Any] = {}
    if kind in PROGRESS_KINDS:
        extra = {k: data.get(k, 0) for k in ("done", "total")} | {"unit": data.get("unit", "")}
    return Event(kind, str(data.get("build", "")), str(data.get("message", "")), step=str(data.get("step", "")),
                 stage_id=str(data.get("stage_id", "")), source=str(data.get("source", "")),
                 time=float(data.get("time", 0.0)), **extra)


def read(url: str, job_id: int, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
    with db.connection(url) as conn:
        rows = conn.execute("SELECT seq, data FROM factory_job_events WHERE job_id = %s AND seq > %s ORDER BY seq",
                            (job_id, after)).fetchall()
    return [(int(seq), data) for seq, data in rows]  # type: ignore[call-overload, misc]


def follow(url: str, job_id: int, *, poll: float = 0.3, finished: Any = None) -> Iterator[dict[str, Any]]:
    """Every event of the job, then new ones as they arrive until finished() says the job is over (polling:
    nothing to keep open across a database restart)."""
    seq = 0
    while True:
        done = finished() if finished else True
        try:
            rows = read(url, job_id, seq)
        except Exception:
            if not finished:
                raise
            rows = []
        for seq, data in rows:  # noqa: B007  (seq: where the next read starts)
            yield data
        if done and not rows:
            return
        if not rows:
            time.sleep(poll)
