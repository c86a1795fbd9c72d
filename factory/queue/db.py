"""The queue database: where its URL comes from, one clear error when it cannot be used, factory's own tables
next to Procrastinate's."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeVar

from factory.errors import FactoryError

if TYPE_CHECKING:
    import psycopg

T = TypeVar("T")
ENV = "FACTORY_DATABASE_URL"
TASK = "factory.build"
CONNECT_TIMEOUT = 5

# factory's tables beside Procrastinate's: build events (what `jobs logs` shows), stored blobs (bundles and
# artifacts, when the store is PostgreSQL) and each finished job's manifest.
SCHEMA = """
CREATE TABLE IF NOT EXISTS factory_job_events (
    seq     bigserial PRIMARY KEY,
    eid     uuid NOT NULL UNIQUE,
    job_id  bigint NOT NULL,
    attempt integer NOT NULL DEFAULT 0,
    data    jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS factory_job_events_job ON factory_job_events (job_id, seq);
CREATE TABLE IF NOT EXISTS factory_blobs (
    key     text PRIMARY KEY,
    loid    oid NOT NULL,
    size    bigint NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS factory_workers (
    worker_id bigint PRIMARY KEY,
    name      text NOT NULL,
    queues    text[] NOT NULL,
    started   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS factory_job_runs (
    job_id   bigint NOT NULL,
    attempt  integer NOT NULL,
    worker   text NOT NULL,
    started  timestamptz NOT NULL DEFAULT now(),
    ended    timestamptz,
    outcome  text,
    PRIMARY KEY (job_id, attempt)
);
CREATE TABLE IF NOT EXISTS factory_job_results (
    job_id   bigint PRIMARY KEY,
    manifest jsonb NOT NULL,
    created  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS factory_queue_keys (
    kid     text PRIMARY KEY,
    public  bytea NOT NULL,
    created timestamptz NOT NULL DEFAULT now()
);
"""


def database_url(url: str | None) -> str:
    """--db, else FACTORY_DATABASE_URL; one clear error when neither is set."""
    url = url or os.environ.get(ENV, "")
    if not url:
        raise FactoryError("no queue database given", hint=f"pass --db postgresql://USER@HOST:PORT/DB or set {ENV}")
    return url


def redact(url: str) -> str:
    """The URL without its password (for messages)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class DatabaseUnavailable(FactoryError):
    """The database does not answer (down, restarting, unreachable): a worker waits for it, a user is told."""


def retrying(fn: Callable[[], T], *, timeout: float = 120.0) -> T:
    """fn(), called again while the database does not answer (a restart), for up to timeout seconds."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except (DatabaseUnavailable, psycopg.OperationalError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def connect(url: str, *, autocommit: bool = True) -> psycopg.Connection[tuple[object, ...]]:
    """A plain connection, or a FactoryError naming the database and what went wrong."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT)
    except psycopg.Error as exc:
        reason = " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__
        raise DatabaseUnavailable(f"cannot reach the queue database {redact(url)}: {reason}",
                           hint=f"check --db / {ENV} and that PostgreSQL is running and accepts this user") from None
    except Exception as exc:  # a malformed URL is a ProgrammingError or ValueError, depending on the part
        raise FactoryError(f"invalid queue database URL {redact(url)}: {exc}",
                           hint="postgresql://USER[:PASSWORD]@HOST:PORT/DATABASE") from None


@contextmanager
def connection(url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    conn = connect(url)
    try:
        yield conn
    finally:
        conn.close()


def schema_applied(conn: psycopg.Connection[tuple[object, ...]]) -> bool:
    row = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL "
                       "AND to_regclass('factory_job_events') IS NOT NULL").fetchone()
    return bool(row and row[0])


def require_schema(url: str) -> None:
    """Fail with the fix when `factory queue init` has not been run on this database."""
    with connection(url) as conn:
        if not schema_applied(conn):
            raise FactoryError(f"the queue schema is not applied in {redact(url)}",
                               hint="run `factory queue init` (once per database)")


def register_key(url: str, kid: str, public: bytes) -> None:
    """Make public the queue key that submits seal secrets to (the newest registered one is used)."""
    with connection(url) as conn:
        conn.execute(SCHEMA)
        conn.execute("INSERT INTO factory_queue_keys (kid, public) VALUES (%s, %s) "
                     "ON CONFLICT (kid) DO UPDATE SET created = now()", (kid, public))


def queue_key(url: str) -> bytes | None:
    """The public queue key secrets are sealed to, or None when none is registered."""
    with connection(url) as conn:
        if not conn.execute("SELECT to_regclass('factory_queue_keys') IS NOT NULL").fetchone()[0]:  # type: ignore[index]
            return None
        row = conn.execute("SELECT public FROM factory_queue_keys ORDER BY created DESC LIMIT 1").fetchone()
    return bytes(row[0]) if row else None  # type: ignore[call-overload]


def init_schema(url: str) -> bool:
    """Apply Procrastinate's schema and factory's tables; False when they were already there."""
    with connection(url) as conn:
        if schema_applied(conn):
            conn.execute(SCHEMA)  # tables added since (IF NOT EXISTS: the others are left as they are)
            return False
        with conn.transaction():
            exists = conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()
            if not (exists and exists[0]):
                from procrastinate.schema import SchemaManager

                conn.execute(SchemaManager.get_schema())  # the packaged DDL, one script
            conn.execute(SCHEMA)
    return True
