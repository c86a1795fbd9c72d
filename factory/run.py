"""The one helper for external commands: argv lists only, and failures that quote the command and its stderr."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

from factory import secrets
from factory.errors import FactoryError

log = logging.getLogger("factory.run")

# Which Debian package brings a tool, for the hint when it is missing.
PACKAGE_OF = {
    "qemu-system-x86_64": "qemu-system-x86",
    "qemu-img": "qemu-utils",
    "xorriso": "xorriso",
    "mcopy": "mtools",
    "mmd": "mtools",
    "mkfs.vfat": "dosfstools",
    "mkfs.ext4": "e2fsprogs",
    "sgdisk": "gdisk",
    "debootstrap": "debootstrap",
    "grub-mkrescue": "grub-common",
    "debconf-set-selections": "debconf",
    "ksvalidator": "pykickstart (pip)",
    "ansible-playbook": "ansible-core (pip) or ansible",
    "ansible-galaxy": "ansible-core (pip) or ansible",
    "sshpass": "sshpass",
    "virsh": "libvirt-clients",
    "VBoxManage": "virtualbox",
}

StrPath = str | os.PathLike[str]


def which(tool: str) -> str:
    """Absolute path of a host tool, or a user error naming the package that provides it.

    PATH first; then the directory of the running interpreter, where pip put the console scripts of factory's own
    dependencies (ansible-core's ansible-playbook in an unactivated venv or a pipx install)."""
    found = shutil.which(tool) or shutil.which(tool, path=os.path.dirname(sys.executable))
    if not found:
        pkg = PACKAGE_OF.get(tool, tool)
        raise FactoryError(f"required host tool {tool!r} was not found on PATH",
                           hint=f"install it (Debian/Ubuntu: apt-get install {pkg})")
    return found


def run(
    argv: Sequence[StrPath],
    *,
    check: bool = True,
    capture: bool = True,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
    cwd: StrPath | None = None,
    timeout: float | None = None,
    on_line: Callable[[str], None] | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run argv (never through a shell). With on_line, stdout+stderr are streamed line by line as they come."""
    args = [os.fspath(a) for a in argv]
    shown = secrets.mask(shlex.join(args))
    if os.sep not in args[0]:
        args[0] = which(args[0])
    log.debug("run: %s", shown)
    full_env = {**os.environ, **env} if env is not None else None
    try:
        if on_line is not None:
            proc = _run_streaming(args, input, full_env, cwd, timeout, on_line)
        else:
            proc = subprocess.run(args, input=input, env=full_env, cwd=cwd, timeout=timeout,
                                  stdout=subprocess.PIPE if capture else None,
                                  stderr=subprocess.PIPE if capture else None)
    except subprocess.TimeoutExpired as exc:
        raise FactoryError(f"command timed out after {timeout:g}s: {shown}") from exc
    if check and proc.returncode != 0:
        raise FactoryError(failure_message(args, proc.returncode, proc.stderr or proc.stdout or b""))
    return proc


def failure_message(args: Sequence[str], code: int, output: bytes, tail_lines: int = 15) -> str:
    tail = secrets.mask(output.decode(errors="replace")).rstrip().splitlines()[-tail_lines:]
    text = f"command failed with exit code {code}: {secrets.mask(shlex.join(args))}"
    if tail:
        text += "\n" + "\n".join("    " + line for line in tail)
    return text


def _run_streaming(args: list[str], input: bytes | None, env: Mapping[str, str] | None,
                   cwd: StrPath | None, timeout: float | None,
                   on_line: Callable[[str], None]) -> subprocess.CompletedProcess[bytes]:
    # The reader runs in a thread so the timeout is enforced even while output is flowing (or while a silent
    # child holds the pipe open); the child gets its own process group so a timeout or Ctrl-C kills its whole
    # tree, not just the shell.
    lines: list[bytes] = []
    proc: subprocess.Popen[bytes] | None = None
    try:
        # The child is in its own session, so Ctrl-C never reaches it: an interrupt must kill it here. One that
        # landed inside Popen (the child already running, its pid not yet ours) would leave it running, so
        # interrupts wait until Popen has returned.
        with _interrupts_held():
            proc = subprocess.Popen(args, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                    start_new_session=True)
    except BaseException:
        if proc is not None:
            with proc:
                _kill_group(proc)
        raise
    with proc:  # its exit closes the pipe: the child must be dead by then, or the reader holds the pipe's lock
        stdout = proc.stdout
        assert stdout is not None

        def pump() -> None:
            for raw in stdout:
                lines.append(raw)
                on_line(secrets.mask(raw.decode(errors="replace").rstrip("\n")))

        try:
            reader = threading.Thread(target=pump, name=f"run:{os.path.basename(args[0])}", daemon=True)
            reader.start()
            if input is not None and proc.stdin:
                proc.stdin.write(input)
                proc.stdin.close()
            code = proc.wait(timeout=timeout)
        except BaseException:
            _kill_group(proc)
            raise
        reader.join(timeout=5)
    out = b"".join(lines)
    return subprocess.CompletedProcess(args, code, out, out)


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """SIGINT/SIGTERM that arrive in the block are delivered when it ends (main thread only: handlers live there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.signal(s, lambda signum, frame: pending.append(signum)) for s in held}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])  # now, through the handler the caller had


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def tool_path(tool: str) -> Path:
    return Path(which(tool))


def die_with_parent() -> None:
    """preexec_fn for long-lived children (QEMU): the kernel kills the child if factory itself dies, even by
    SIGKILL, so no VM is ever orphaned. Linux only (prctl PR_SET_PDEATHSIG); a no-op elsewhere.

    Note: the signal fires when the *thread* that forked exits, so start such children from a long-lived thread.
    """
    import ctypes
    import ctypes.util

    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return
    pr_set_pdeathsig = 1
    ctypes.CDLL(libc_name, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
