"""Where bundles and artifacts live between the submitter, the workers and whoever fetches the results:
content-addressed blobs (key = sha256 of the bytes), in PostgreSQL large objects (the default: nothing else to
run) or an S3-compatible bucket (FACTORY_STORE_URL=s3://bucket/prefix, endpoint from AWS_ENDPOINT_URL).

A blob appears whole or not at all: a large object is written inside one transaction and named in factory_blobs
in the same transaction; an S3 object is written by one PUT (multipart for big files) under its final key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from factory.errors import FactoryError
from factory.fsutil import file_sha256
from factory.queue import db

STORE_ENV = "FACTORY_STORE_URL"
CHUNK = 1 << 20
INV_WRITE, INV_READ = 0x20000, 0x40000



class Blobs(Protocol):
    def put(self, path: Path) -> str:
        """Store a file; its key (sha256). Storing the same content twice stores it once."""

    def get(self, key: str, dest: Path) -> None:
        """Write the blob to dest (atomically), or raise FactoryError when it is missing."""

    def has(self, key: str) -> bool: ...


class PgBlobs:
    """Blobs as PostgreSQL large objects, indexed by factory_blobs."""

    def __init__(self, url: str) -> None:
        self.url = url

    def has(self, key: str) -> bool:
        with db.connection(self.url) as conn:
            return conn.execute("SELECT 1 FROM factory_blobs WHERE key = %s", (key,)).fetchone() is not None

    def put(self, path: Path) -> str:
        key = file_sha256(path)
        if self.has(key):
            return key
        with db.connection(self.url) as conn, conn.transaction():
            row = conn.execute("SELECT lo_create(0)").fetchone()
            assert row is not None
            oid = row[0]
            fd_row = conn.execute("SELECT lo_open(%s, %s)", (oid, INV_WRITE)).fetchone()
            assert fd_row is not None
            fd = fd_row[0]
            with open(path, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    conn.execute("SELECT lowrite(%s, %s)", (fd, chunk))
            conn.execute("SELECT lo_close(%s)", (fd,))
            added = conn.execute("INSERT INTO factory_blobs (key, loid, size) VALUES (%s, %s, %s) "
                                 "ON CONFLICT (key) DO NOTHING RETURNING key",
                                 (key, oid, path.stat().st_size)).fetchone()
            if added is None:  # someone stored the same content meanwhile: keep theirs
                conn.execute("SELECT lo_unlink(%s)", (oid,))
        return key

    def get(self, key: str, dest: Path) -> None:
        tmp = dest.with_name(f".{dest.name}.part")
        with db.connection(self.url) as conn, conn.transaction():
            row = conn.execute("SELECT loid FROM factory_blobs WHERE key = %s", (key,)).fetchone()
            if row is None:
                raise FactoryError(f"blob {key[:16]} is not in the store of {db.redact(self.url)}",
                                   hint="it was removed, or the submitter used another FACTORY_STORE_URL")
            fd_row = conn.execute("SELECT lo_open(%s, %s)", (row[0], INV_READ)).fetchone()
            assert fd_row is not None
            try:
                with open(tmp, "wb") as out:
                    while True:
                        data = conn.execute("SELECT loread(%s, %s)", (fd_row[0], CHUNK)).fetchone()
                        if not data or not data[0]:
                            break
                        out.write(bytes(data[0]))  # type: ignore[call-overload]
                os.replace(tmp, dest)
            finally:
                tmp.unlink(missing_ok=True)


class S3Blobs:
    """Blobs as objects s3://bucket/prefix/<key> (boto3, from the `cloud` extra)."""

    def __init__(self, url: str) -> None:
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        try:
            import boto3
        except ImportError:
            raise FactoryError(f"{STORE_ENV}={url} needs boto3", hint="pip install 'factory[cloud]'") from None
        self.s3 = boto3.client("s3")  # credentials, region and endpoint (AWS_ENDPOINT_URL[_S3]) as boto3 finds them

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def has(self, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=self.bucket, Key=self._name(key))
        except Exception:
            return False
        return True

    def put(self, path: Path) -> str:
        key = file_sha256(path)
        if not self.has(key):
            self.s3.upload_file(str(path), self.bucket, self._name(key))
        return key

    def get(self, key: str, dest: Path) -> None:
        tmp = dest.with_name(f".{dest.name}.part")
        try:
            self.s3.download_file(self.bucket, self._name(key), str(tmp))
            os.replace(tmp, dest)
        except Exception as exc:
            raise FactoryError(f"blob {key[:16]} cannot be read from s3://{self.bucket}/{self.prefix}: {exc}") from None
        finally:
            tmp.unlink(missing_ok=True)


def open_store(db_url: str, store_url: str | None = None) -> Blobs:
    """The store named by FACTORY_STORE_URL (s3://…), else the queue database itself."""
    url = store_url if store_url is not None else os.environ.get(STORE_ENV, "")
    if not url or url in ("postgres", "postgresql", "db"):
        return PgBlobs(db_url)
    if url.startswith("s3://"):
        return S3Blobs(url)
    if url.startswith(("postgresql://", "postgres://")):
        return PgBlobs(url)
    raise FactoryError(f"{STORE_ENV}={url!r} is not a store factory knows",
                       hint="leave it unset (the queue database), or s3://BUCKET/PREFIX, or postgresql://…")
