"""Steps for what the user (not factory) uses to watch and reach the VM, and the extra devices Packer attaches:
VNC, an extra QMP socket, the display, an emulated TPM (swtpm), a floppy, firmware as pflash.

factory drives the VM through its own QMP socket and never needs VNC or a window; these exist for the user
and for guests that expect them (Windows: floppy answer files, TPM 2.0).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory import secrets
from factory.build import EventKind, Step
from factory.errors import FactoryError
from factory.machine import vnc
from factory.machine.driver import Feature, Machine, MachineSpec
from factory.machine.ports import PortLease
from factory.machine.tpm import TpmSpec
from factory.machine.vnc import VncSpec
from factory.media import floppy
from factory.run import which
from factory.steps.context import BuildContext

UNIX_PATH_MAX = 107           # sun_path is 108 bytes with the terminating NUL


@dataclass
class ConsoleState:
    """What the console steps produced, read when each machine phase is specified."""

    floppy: Path | None = None
    vnc: VncSpec | None = None
    vnc_lease: PortLease | None = None
    user_qmp: Path | None = None
    tpm: TpmSpec | None = None
    vnc_password_source: str | None = None
    announced_vnc_port: int | None = None


def state(ctx: BuildContext) -> ConsoleState:
    if ctx.console is None:
        ctx.console = ConsoleState()
    assert isinstance(ctx.console, ConsoleState)
    return ctx.console


def machine_console(ctx: BuildContext, spec: MachineSpec) -> MachineSpec:
    """spec completed with the console and devices the steps prepared (same for install and run phases)."""
    st, c = state(ctx), ctx.s
    return dataclasses.replace(
        spec, display=c.display or "", use_default_display=c.use_default_display, vnc=st.vnc, user_qmp=st.user_qmp,
        tpm=st.tpm, floppy=st.floppy, bios=ctx.path(c.firmware), bios_pflash=c.use_pflash)


class Floppy(Step[BuildContext]):
    name, title = "floppy", "Making the floppy (floppy_files / floppy_dirs / floppy_content)"

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.s.wants_floppy

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        c = ctx.s
        return {"floppy_files": list(c.floppy_files), "floppy_dirs": list(c.floppy_dirs),
                "floppy_content": c.floppy_content, "floppy_label": c.floppy_label}

    def inputs(self, ctx: BuildContext) -> Mapping[str, Any]:
        c = ctx.s
        return {"files": floppy.collect(ctx.root, c.floppy_files, c.floppy_dirs, c.floppy_content,
                                        ctx.template_values, warn=lambda m: None)}

    def run(self, ctx: BuildContext) -> None:
        st, c = state(ctx), ctx.s
        assert ctx.workdir is not None
        ctx.require(Feature.FLOPPY, "floppy_files / floppy_dirs / floppy_content")
        files = floppy.collect(ctx.root, c.floppy_files, c.floppy_dirs, c.floppy_content, ctx.template_values,
                               warn=lambda m: ctx.emit(EventKind.NOTICE, m))
        st.floppy = floppy.make_floppy(files, ctx.workdir / "floppy.img", label=c.floppy_label)
        ctx.say(f"floppy {c.floppy_label!r} with {len(files)} file(s): " + ", ".join(sorted(files)))


class Console(Step[BuildContext]):
    """VNC port and password, the user's QMP socket, the TPM's state directory, firmware checks."""

    name, title = "console", "Preparing the console (VNC, QMP, TPM)"

    def applies(self, ctx: BuildContext) -> bool:
        c = ctx.s
        return not c.disable_vnc or c.qmp_enable or c.vtpm or c.use_pflash

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        c = ctx.s
        return {"vnc": not c.disable_vnc, "vnc_use_password": c.vnc_use_password, "qmp_enable": c.qmp_enable,
                "vtpm": c.vtpm, "use_tpm1": c.use_tpm1, "tpm_device_type": c.tpm_device_type}

    def run(self, ctx: BuildContext) -> None:
        st, c = state(ctx), ctx.s
        assert ctx.workdir is not None
        if c.use_pflash and not c.firmware:
            ctx.emit(EventKind.NOTICE, "use_pflash has no effect without `firmware` (a firmware file to load)")
        if c.firmware:
            ctx.require(Feature.FIRMWARE_FILE, "firmware")
        if c.vtpm:
            ctx.require(Feature.TPM, "vtpm")
            which("swtpm")
            st.tpm = TpmSpec(state_dir=ctx.workdir / "tpm", tpm1=c.use_tpm1, model=c.tpm_device_type)
            ctx.say(f"emulated TPM {'1.2' if c.use_tpm1 else '2.0'} ({c.tpm_device_type}) through swtpm")
        if c.qmp_enable:
            ctx.require(Feature.USER_MONITOR, "qmp_enable")
            st.user_qmp = _user_qmp(ctx)
            ctx.say(f"QMP socket for you (qmp_enable): {st.user_qmp}")
        # VNC is on unless disabled (Packer's default), so a driver without it simply has none, no error.
        if not c.disable_vnc and (ctx.driver is None or Feature.VNC in ctx.driver.features):
            self._vnc(ctx, st)

    def _vnc(self, ctx: BuildContext, st: ConsoleState) -> None:
        c = ctx.s
        assert ctx.workdir is not None
        password, source = None, None
        if c.vnc_use_password:
            password, source = c.vnc_password or None, "from vnc_password"
            if password is None:
                # Packer prints a generated password; factory keeps it off the logs, in a file only you can read.
                password = vnc.generate_password()
                pw_file = ctx.workdir / "vnc-password"
                fd = os.open(pw_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(password + "\n")
                source = f"in {pw_file} (random, this build only)"
        elif c.vnc_password:
            secrets.register(c.vnc_password)
        st.vnc, st.vnc_lease = vnc.reserve_vnc(c.vnc_bind_address, c.vnc_port_min, c.vnc_port_max, password)
        st.vnc_password_source = source
        ctx.cleanups.push(f"release VNC port {st.vnc.port}", st.vnc_lease.release)
        ctx.say(f"VNC will listen on {vnc.address(st.vnc)}")


def announce(ctx: BuildContext, machine: Machine) -> None:
    """Once the VM runs: where to connect, on the port QEMU really listens on (said again only if it changed)."""
    st = state(ctx)
    if st.vnc is None:
        return
    port = machine.vnc_port() or st.vnc.port
    if port != st.announced_vnc_port:
        st.announced_vnc_port = port
        ctx.say(vnc.connection_message(st.vnc, st.vnc_password_source, port))


def _user_qmp(ctx: BuildContext) -> Path:
    assert ctx.workdir is not None
    path = ctx.path(ctx.s.qmp_socket_path) or ctx.workdir / f"{ctx.vm_name}.monitor"
    if len(os.fsencode(path)) > UNIX_PATH_MAX:
        raise FactoryError(f"qmp_socket_path {path} is too long for a unix socket ({len(os.fsencode(path))} "
                           f"bytes, at most {UNIX_PATH_MAX})", hint="choose a shorter path, e.g. under /tmp")
    if not path.parent.is_dir():
        raise FactoryError(f"qmp_socket_path {path}: directory {path.parent} does not exist",
                           hint="create it first or choose another qmp_socket_path")
    return path
