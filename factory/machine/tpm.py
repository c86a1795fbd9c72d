"""An emulated TPM for the guest: one swtpm process per VM start, its state kept in the build's scratch dir.

swtpm runs with `--terminate` (it exits when QEMU closes the control channel) and as a child that dies with
factory (PR_SET_PDEATHSIG), and stop() ends it explicitly too: no exit path of a build leaves it running.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from factory.errors import FactoryError
from factory.run import PACKAGE_OF, die_with_parent, which

PACKAGE_OF.setdefault("swtpm", "swtpm")


@dataclass(frozen=True)
class TpmSpec:
    """An emulated TPM (swtpm) whose state lives in state_dir across the build's VM starts."""

    state_dir: Path
    tpm1: bool = False                   # TPM 1.2 instead of 2.0
    model: str = "tpm-tis"               # the guest-visible device (tpm-tis, tpm-crb, tpm-tis-device ...)


class Swtpm:
    """The swtpm process behind one VM's TPM; the socket QEMU connects its tpmdev to."""

    def __init__(self, spec: TpmSpec, socket_dir: Path) -> None:
        self.spec = spec
        self.socket = socket_dir / "swtpm.sock"
        self.log = socket_dir / "swtpm.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def argv(self) -> list[str]:
        state = self.spec.state_dir.resolve()
        argv = ["swtpm", "socket", "--tpmstate", f"dir={state}",
                "--ctrl", f"type=unixio,path={self.socket.resolve()}", "--terminate",
                "--log", f"file={self.log.resolve()},level=1"]
        return argv if self.spec.tpm1 else [*argv, "--tpm2"]

    def start(self, timeout: float = 10.0) -> None:
        """Start swtpm and wait until its control socket accepts QEMU."""
        argv = self.argv
        argv[0] = which("swtpm")
        self.spec.state_dir.mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        # stderr goes to the log file too: a pipe nobody reads could fill up and stall swtpm mid-build.
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log,
                                         preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while not self.socket.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self._last_words()
                self.stop()
                raise FactoryError(f"swtpm did not start (vtpm): {err or f'no socket after {timeout:g}s'}",
                                   hint="check that swtpm works: `swtpm socket --tpm2 --help` "
                                        "(Debian/Ubuntu: apt-get install swtpm swtpm-tools)")
            time.sleep(0.02)

    def _last_words(self) -> str:
        return " ".join(" ".join(self.log_tail()).split())[-400:]

    def log_tail(self, lines: int = 4) -> list[str]:
        """swtpm's last log lines (why QEMU could not initialise the TPM)."""
        try:
            return self.log.read_text(errors="replace").strip().splitlines()[-lines:]
        except OSError:
            return []

    def stop(self) -> None:
        """End swtpm (idempotent); it normally exits by itself once QEMU is gone."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        self.socket.unlink(missing_ok=True)


def qemu_args(spec: TpmSpec, socket: Path) -> list[list[str]]:
    """QEMU's chardev + tpmdev + device for a TPM emulated by swtpm at socket."""
    return [["-chardev", f"socket,id=chrtpm,path={socket}"],
            ["-tpmdev", "emulator,id=tpm0,chardev=chrtpm"],
            ["-device", f"{spec.model},tpmdev=tpm0"]]
