"""`shell-local`: run commands or scripts on the build host with the build's variables.

run_local() is shared with the shell-local post-processor (factory.post), which passes its own context.
"""

from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path
from typing import Any

from factory.comm.ssh import Communicator
from factory.errors import FactoryError
from factory.placeholders import expand
from factory.provision.base import (
    LocalContext,
    ProvisionContext,
    Provisioner,
    ProvisionerType,
    check_exit,
    flatten_env,
    packer_env,
)
from factory.run import run
from factory.schema.common import ShellLocalOptions


def run_local(config: ShellLocalOptions, ctx: LocalContext) -> None:
    """Run config's command/inline/script(s) on the host, streaming output to ctx.emit; error on a bad status."""
    host_os = platform.system().lower()
    if config.only_on and host_os not in [o.lower() for o in config.only_on]:
        ctx.emit(f"Skipping shell-local: only_on {config.only_on} does not include {host_os}")
        return
    values = packer_env(ctx, config.environment_vars, config.env)
    env = {**os.environ, **values}
    with tempfile.TemporaryDirectory(prefix="factory-shell-local-") as tmp:
        for script in _scripts(config, ctx, Path(tmp)):
            argv = [expand(arg, {"Vars": flatten_env(values, config.env_var_format),
                                         "Script": str(script), "Command": config.command or ""},
                                   "execute_command") for arg in config.execute_command]
            if not argv or not argv[0]:
                raise FactoryError("shell-local: execute_command is empty",
                                   hint='e.g. execute_command = ["/bin/sh", "-c", "{{.Vars}} {{.Script}}"]')
            ctx.emit(f"Running local shell script: {script}")
            timeout = ctx.remaining(f"running {script}") if isinstance(ctx, ProvisionContext) else None
            proc = run(argv, check=False, env=env, cwd=getattr(ctx, "root", None), timeout=timeout,
                       on_line=ctx.emit)
            check_exit(proc.returncode, config.valid_exit_codes, f"shell-local: {script}")


def _scripts(config: ShellLocalOptions, ctx: LocalContext, tmp: Path) -> list[Path]:
    """Paths to run: a temp script for command/inline (with inline_shebang), else script(s) as given."""
    lines = [config.command] if config.command else list(config.inline)
    if lines:
        path = tmp / "script.sh"
        path.write_text(f"#!{config.inline_shebang}\n" + "\n".join(lines) + "\n")
        path.chmod(0o700)
        return [path]
    given = [config.script] if config.script else list(config.scripts)
    if not given:
        raise FactoryError("shell-local needs one of command, inline, script or scripts",
                           hint='e.g. inline = ["echo hello"]')
    root = getattr(ctx, "root", None) or Path.cwd()
    paths = [p if p.is_absolute() else root / p for p in (Path(s).expanduser() for s in given)]
    for path in paths:
        if not path.exists() or path.is_dir():
            raise FactoryError(f"shell-local: script {path} does not exist",
                               hint="paths are relative to the directory factory runs in")
    return paths


class ShellLocal(Provisioner, kind=ProvisionerType.SHELL_LOCAL):
    needs_communicator = False

    def provision(self, config: Any, comm: Communicator | None, ctx: ProvisionContext) -> None:
        assert isinstance(config, ShellLocalOptions)
        run_local(config, ctx)
