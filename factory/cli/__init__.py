"""The typer app: parse, call, print. Each module in this package adds its commands to `app`.

Errors: a FactoryError is printed as one message (with hint and place) and exits 1; anything else is a bug and
exits 70 with a one-line summary. `--debug` (or FACTORY_DEBUG=1) shows the traceback either way.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import logging
import os
import pkgutil
import sys
import threading
from typing import NoReturn

import typer

from factory import __version__, events, ui
from factory.errors import FactoryError

app = typer.Typer(
    name="factory",
    help="A local, hypervisor-first VM image factory that runs Packer HCL2 templates.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# Packer's single-dash long flags, accepted alongside the double-dash forms.
PACKER_FLAGS = ("var", "var-file", "only", "except", "force", "debug", "syntax-only", "check", "diff",
                "recursive", "on-error", "machine-readable", "timestamp-ui", "parallel-builds", "color",
                "evaluate-datasources", "write", "upgrade", "output-file", "with-annotations", "fail-fast",
                "resume", "force-rebuild", "checkpoint")


def normalize_argv(argv: list[str]) -> list[str]:
    """Turn Packer-style `-var k=v` / `-var-file=f` into `--var k=v` / `--var-file=f`."""
    out = []
    for arg in argv:
        if arg.startswith("-") and not arg.startswith("--"):
            name = arg[1:].split("=", 1)[0]
            if name in PACKER_FLAGS:
                arg = "-" + arg
        out.append(arg)
    return out


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
) -> None:
    if debug:
        os.environ["FACTORY_DEBUG"] = "1"
        logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")


@app.command()
def version() -> None:
    """Print factory's version."""
    print(f"factory {__version__}")


def _registered() -> set[str]:
    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    return names | {g.name or "" for g in app.registered_groups}


def _load_commands(args: list[str] | None = None) -> None:
    """Import the command modules. Only the one named like the command when it defines that command (a build
    starts ~0.1 s sooner without the others); every module for help, an unknown name and the rest."""
    modules = [mod.name for mod in pkgutil.iter_modules(__path__)]
    args = args or []
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command in modules:
        importlib.import_module(f"{__name__}.{command}")
        if command in _registered() and "--help" not in args and "-h" not in args:
            return
    for name in modules:
        importlib.import_module(f"{__name__}.{name}")


_TRUE, _FALSE = ("true", "1", "t", "yes"), ("false", "0", "f", "no")


def ui_flags(args: list[str]) -> list[str]:
    """Apply and remove Packer's UI flags, accepted by every command: `-color=BOOL`, `-timestamp-ui`."""
    color, stamps, rest = True, False, []
    for arg in args:
        name, _, value = arg.partition("=")
        if name == "--color" and (value or "true").lower() in _TRUE + _FALSE:
            color = (value or "true").lower() in _TRUE
        elif name == "--timestamp-ui" and (value or "true").lower() in _TRUE + _FALSE:
            stamps = (value or "true").lower() in _TRUE
        else:
            rest.append(arg)
    ui.configure(color=color, timestamps=stamps)
    return rest


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    args = ui_flags(normalize_argv(list(sys.argv[1:] if argv is None else argv)))
    debug = "--debug" in args or os.environ.get("FACTORY_DEBUG") == "1"
    _load_commands(args)
    from factory.build import HumanMonitor  # stand-alone commands print through the default bus

    events.set_console_monitor(HumanMonitor)
    try:
        code = app(args=args, prog_name="factory", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors: the parser's own message, exit 2
        exc.show()  # type: ignore[attr-defined]
        sys.exit(getattr(exc, "exit_code", 2))
    except FactoryError as exc:
        if debug:
            import traceback

            traceback.print_exc()
        ui.error(exc.render())
        sys.exit(1)
    except (KeyboardInterrupt, typer.Abort):
        ui.error("interrupted")
        sys.exit(130)
    except Exception as exc:
        if debug:
            raise
        ui.error(f"internal error: {type(exc).__name__}: {exc} (a bug in factory; rerun with --debug)")
        sys.exit(70)
    sys.exit(code if isinstance(code, int) else 0)


def run() -> NoReturn:
    """The console script and `python -m factory`: main() on sys.argv, then leave without the interpreter's
    teardown. Freeing the ~1,000 modules a build loads and their objects took ~0.2 s after the work was done
    (every build has cleaned up by then). What an exit must still do is done: atexit functions run (weakref
    finalizers such as an unclosed TemporaryDirectory's, logging's flush) and the standard streams are flushed.
    While a non-daemon thread still runs, the normal exit, which waits for it, is taken instead."""
    try:
        main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    if isinstance(code, str):
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else 0 if code is None else 1
    if any(t.is_alive() and not t.daemon and t is not threading.main_thread() for t in threading.enumerate()):
        sys.exit(status)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(status)
