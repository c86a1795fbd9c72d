"""The `shell` provisioner: upload commands or scripts to the guest and run them, streaming their output."""

from __future__ import annotations

import secrets as pyrandom
import shlex
import time
from dataclasses import dataclass
from typing import Any

from factory.comm.ssh import Communicator, Disconnected
from factory.errors import FactoryError
from factory.placeholders import expand
from factory.provision.base import (
    ProvisionContext,
    Provisioner,
    ProvisionerType,
    check_exit,
    flatten_env,
    packer_env,
)
from factory.schema.provisioners import ShellProvisioner

DEFAULT_EXECUTE = "chmod +x {{.Path}}; {{.Vars}} {{.Path}}"
# Packer's default when use_env_var_file is set: source the uploaded file instead of prefixing the command.
DEFAULT_EXECUTE_ENV_FILE = "chmod +x {{.Path}}; . {{.EnvVarFile}} && {{.Path}}"


@dataclass(frozen=True)
class Script:
    """One thing to run: its display name and content."""

    name: str
    content: bytes


def scripts_of(config: ShellProvisioner, ctx: ProvisionContext) -> list[Script]:
    """inline (one script with inline_shebang), script, or scripts: read now so a missing file fails first."""
    if config.inline:
        body = f"#!{config.inline_shebang}\n" + "\n".join(config.inline) + "\n"
        return [Script("inline script", body.encode())]
    paths = [config.script] if config.script else list(config.scripts)
    if not paths:
        raise FactoryError("the shell provisioner needs one of inline, script or scripts",
                           hint='e.g. inline = ["echo hello"]')
    found = []
    for path in paths:
        local = ctx.local_path(path)
        try:
            data = local.read_bytes()
            # Packer converts Windows line endings unless `binary = true` (a CRLF shebang line cannot run).
            found.append(Script(path, data if config.binary else data.replace(b"\r\n", b"\n")))
        except OSError as exc:
            raise FactoryError(f"shell provisioner: cannot read script {local}: {exc.strerror or exc}",
                               hint="paths are relative to the directory factory runs in") from None
    return found


class Shell(Provisioner, kind=ProvisionerType.SHELL):
    def provision(self, config: Any, comm: Communicator | None, ctx: ProvisionContext) -> None:
        assert isinstance(config, ShellProvisioner) and comm is not None
        scripts = scripts_of(config, ctx)
        remote = config.remote_path or (
            f"{config.remote_folder.rstrip('/') or ''}/"
            f"{config.remote_file or f'script_{pyrandom.randbelow(10**6)}.sh'}")
        values = packer_env(ctx, config.environment_vars, config.env)
        start_retry = config.start_retry_timeout
        execute = config.execute_command
        placeholders = {"Path": remote, "Vars": flatten_env(values, config.env_var_format)}
        env_file = None
        if config.use_env_var_file:
            env_file = f"{remote.rsplit('/', 1)[0] or ''}/varfile_{pyrandom.randbelow(10**6)}.sh"
            placeholders["EnvVarFile"] = env_file
            if execute == DEFAULT_EXECUTE:
                execute = DEFAULT_EXECUTE_ENV_FILE
        command = expand(execute, placeholders, "execute_command")
        for script in scripts:
            ctx.emit(f"Provisioning with shell script: {script.name}")
            self._await_guest(comm, start_retry, ctx)
            if env_file is not None:
                env_text = flatten_env(values, "export %s='%s'\n")
                comm.upload(env_text.encode(), env_file, mode=0o600)
            if not self._run(comm, command, config, ctx, script, remote):
                continue  # the guest went away as expected (reboot): the next upload waits for it to return
            if not config.skip_clean:  # with the next command: one SSH session fewer (see Communicator.defer)
                comm.defer("rm -f " + " ".join(shlex.quote(p) for p in (remote, env_file) if p))
        if config.pause_after:
            pause = config.pause_after
            ctx.emit(f"Pausing {pause:g}s after the scripts (pause_after)")
            time.sleep(pause)

    def _await_guest(self, comm: Communicator, start_retry: float, ctx: ProvisionContext) -> None:
        """If the guest is away (rebooting after expect_disconnect), wait for it up to start_retry_timeout."""
        if not comm.is_connected():
            left = ctx.remaining("the guest came back")
            comm.reconnect(timeout=min(start_retry, left) if left is not None else start_retry)

    def _run(self, comm: Communicator, command: str, config: ShellProvisioner, ctx: ProvisionContext,
             script: Script, remote: str) -> bool:
        """Upload and run one script in a single remote command; False if it disconnected and that was expected.

        Under emulation (TCG) an SFTP upload before the run (an sftp-server start plus round trips) costs a
        third of the time from sshd up to the first command, and each extra process ~50 ms: so the script is
        written by the same shell that then runs execute_command, with a builtin printf when it fits.
        """
        chmod = "chmod +x {{.Path}}" not in config.execute_command  # Packer's default makes it executable itself
        write, stdin = write_file_command(script.content, remote, executable=chmod)
        line = f"{write} || exit\n{command}"
        if stdin is not None and comm.settings.pty:
            # A terminal would translate the bytes on their way to cat: send them with the transfer method.
            comm.upload(script.content, remote, mode=0o755)
            line, stdin = command, None
        try:
            code = comm.run(line, on_line=ctx.emit, stdin=stdin, timeout=ctx.remaining(f"running {script.name}"))
        except Disconnected as exc:
            if config.expect_disconnect:
                ctx.emit("Connection dropped as expected (expect_disconnect); reconnecting for the next step")
                return False
            raise FactoryError(f"shell provisioner: {script.name}: {exc.message}", hint=exc.hint) from exc
        # Asked of the remote shell, not SFTP: the guest may have no SFTP subsystem (ssh_file_transfer_method=scp).
        if code not in config.valid_exit_codes and comm.run(f"test -e {shlex.quote(remote)}") != 0:
            raise FactoryError(f"shell provisioner: cannot upload {script.name} to {remote} on the guest "
                               f"(exit status {code})",
                               hint="remote_folder (or remote_path's directory) must exist and be writable by "
                                    "the SSH user: see the shell's message above")
        check_exit(code, config.valid_exit_codes, f"shell provisioner: {script.name}")
        return True


# printf's format is the file's bytes: these pass as themselves in single quotes in sh, bash, dash, zsh, fish
# and csh; every other byte is a 3-digit octal escape (newline \n), so no shell sees a quote, a newline or a `!`.
_PLAIN = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _-./,:=+@^#()[]{}<>;|&*?~$\"\t")
# One argv string may not exceed 128 KiB on Linux (MAX_ARG_STRLEN); larger scripts go through stdin.
_MAX_INLINE = 96 * 1024


def printf_format(content: bytes) -> str | None:
    """content as a printf format that reproduces it byte for byte, or None if it cannot (NUL bytes, too big)."""
    if b"\0" in content:
        return None
    out = []
    for byte in content:
        if byte in _PLAIN:
            out.append(chr(byte))
        elif byte == 0x0A:
            out.append("\\n")
        elif byte == 0x25:
            out.append("%%")
        else:
            out.append(f"\\{byte:03o}")
    text = "".join(out)
    return text if len(text) <= _MAX_INLINE else None


def write_file_command(content: bytes, path: str, *, executable: bool) -> tuple[str, bytes | None]:
    """A shell command that writes content to path on the guest, and the stdin it needs (None: none)."""
    quoted = shlex.quote(path)
    fmt = printf_format(content)
    write = f"printf '{fmt}' > {quoted}" if fmt is not None else f"cat > {quoted}"
    chmod = f" && chmod 755 {quoted}" if executable else ""
    return f"umask 022; {write}{chmod}", (None if fmt is not None else content)
