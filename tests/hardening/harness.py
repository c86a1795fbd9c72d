"""The hardening harness: run factory's real CLI entry point in-process and judge how it fails.

A bad input must end in exit 1 (user error) or 2 (usage) with one message on stderr; never 70 (internal
error), never a traceback, never silence. `cli` runs `factory.cli.main` exactly as the console script does.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from factory.cli import main

# A source and build that validate: cases add one bad line to SOURCE (%s) or replace pieces of it.
SOURCE = ('source "qemu" "a" {\n  iso_url      = "x.iso"\n  iso_checksum = "none"\n  ssh_username = "u"\n%s}\n'
          'build {\n  sources = ["source.qemu.a"]\n%s}\n')


def template(source_lines: str = "", build_lines: str = "") -> str:
    return SOURCE % (source_lines, build_lines)


@dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


@contextlib.contextmanager
def _environ(env: Mapping[str, str] | None, cwd: Path | None) -> Iterator[None]:
    saved, here = dict(os.environ), os.getcwd()
    os.environ.update(env or {})
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(here)
        os.environ.clear()
        os.environ.update(saved)


def run_cli(args: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None,
            stdin: bytes | None = None) -> Result:
    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    with _environ(env, cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if stdin is not None:
            import sys

            saved_stdin = sys.stdin
            sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
        try:
            main(list(args))
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        finally:
            if stdin is not None:
                sys.stdin = saved_stdin
    return Result(code, out.getvalue(), err.getvalue())


def assert_user_error(res: Result, *expected: str) -> None:
    """Exit 1 or 2, no internal error or traceback, and every expected piece in the message."""
    assert res.code in (1, 2), f"expected a user error (exit 1/2):\n{res}"
    assert "internal error" not in res.err and "Traceback" not in res.err, str(res)
    assert res.err.strip(), f"failed without a message:\n{res}"
    for piece in expected:
        assert piece in res.err, f"{piece!r} missing from the message:\n{res}"


def assert_no_crash(res: Result) -> None:
    """Success or a clean user error; never the internal-error exit (70) or a traceback."""
    assert res.code in (0, 1, 2, 3), str(res)
    assert "internal error" not in res.err and "Traceback" not in res.err, str(res)
    if res.code in (1, 2):
        assert res.err.strip(), str(res)
