"""Structured option values and their syntax rules, shared by the declarations and the runtime that acts on them.

They live here, not in machine/, media/ or comm/, so the schema imports no runtime package: the runtime imports
these (e.g. the QEMU driver takes a `DiskToolArgs`, the communicator a `Tunnel`), never the other way round.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from factory.errors import FactoryError
from factory.options import Deferred

VNC_BASE_PORT = 5900            # QEMU takes a display number: port - 5900
MAX_VNC_PASSWORD = 8            # VNC authentication (DES) uses 8 bytes; QEMU would silently cut the rest
DEFAULT_FLOPPY_LABEL = "packer"  # Packer's default volume label
_LABEL_FORBIDDEN = set('"*+,./:;<=>?[\\]|')


class DiskFormat(StrEnum):
    """Disk image formats: the qemu builder's `format` and the exporters' outputs."""

    QCOW2 = "qcow2"
    RAW = "raw"
    VMDK = "vmdk"
    VHD = "vhd"
    VHDX = "vhdx"


@dataclass(frozen=True)
class DiskToolArgs:
    """Extra arguments for the driver's disk tool (qemu-img for QEMU: Packer's qemu_img_args), per operation.

    They go after the tool's own options and before the file names, as Packer places them."""

    create: tuple[str, ...] = ()
    convert: tuple[str, ...] = ()
    resize: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: object, *, option: str = "qemu_img_args") -> DiskToolArgs:
        """From `{ create = [...], convert = [...], resize = [...] }`; unknown keys or non-lists are errors."""
        if isinstance(value, DiskToolArgs):
            return value
        hint = 'e.g. qemu_img_args { convert = ["-o", "preallocation=full"], resize = ["--shrink"] }'
        if not isinstance(value, dict):
            raise FactoryError(f"{option} must be a map of create/convert/resize to argument lists", hint=hint)
        known = ("create", "convert", "resize")
        args: dict[str, tuple[str, ...]] = {}
        for key, items in value.items():
            if key not in known:
                raise FactoryError(f"{option}: unknown qemu-img subcommand {key!r}",
                                   hint="keys: create, convert, resize; " + hint)
            if not isinstance(items, list | tuple) or not all(isinstance(a, str) for a in items):
                raise FactoryError(f"{option}.{key} must be a list of strings, got {items!r}", hint=hint)
            args[key] = tuple(items)
        return cls(**args)


NO_DISK_ARGS = DiskToolArgs()


@dataclass(frozen=True)
class BootStep:
    """One element of boot_steps (or of boot_command, without a description): a group of keys typed together."""

    keys: str
    description: str = ""


_STEP_HINT = 'each step is ["keys", "description"], e.g. ["<esc><wait>", "open the boot prompt"]'


def boot_steps(value: object, *, option: str = "boot_steps") -> tuple[BootStep, ...]:
    """Packer's boot_steps: a list of [keys] or [keys, description]; anything else is an error naming the step."""
    if not isinstance(value, list | tuple):
        raise FactoryError(f"{option} must be a list of [keys, description] pairs, not {type(value).__name__}",
                           hint=_STEP_HINT)
    steps = []
    for i, step in enumerate(value):
        if isinstance(step, BootStep):
            steps.append(step)
            continue
        if isinstance(step, str) or not isinstance(step, list | tuple) or not 1 <= len(step) <= 2:
            raise FactoryError(f"{option}[{i}] must be [keys] or [keys, description], got {step!r}",
                               hint=_STEP_HINT)
        if not all(isinstance(part, str) for part in step):
            raise FactoryError(f"{option}[{i}]: keys and description must be strings, got {step!r}",
                               hint=_STEP_HINT)
        steps.append(BootStep(step[0], step[1] if len(step) == 2 else ""))
    return tuple(steps)


@dataclass(frozen=True)
class Tunnel:
    listen_port: int
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, option: str) -> Tunnel:
        """`port:host:hostport` (Packer's and OpenSSH's form; IPv6 hosts in brackets)."""
        listen, _, rest = text.partition(":")
        host, _, port = rest.rpartition(":")
        host = host.removeprefix("[").removesuffix("]")
        if not (listen.isdigit() and port.isdigit() and host) or not (
                0 < int(listen) < 65536 and 0 < int(port) < 65536):
            raise FactoryError(f"{option} entry {text!r} is not PORT:HOST:PORT",
                               hint=f'e.g. {option} = ["8080:localhost:3000"]')
        return cls(int(listen), host, int(port))

    def __str__(self) -> str:
        return f"{self.listen_port}:{self.host}:{self.port}"


def tunnels(values: list[str] | tuple[str, ...], option: str) -> tuple[Tunnel, ...]:
    """Parse ssh_local_tunnels / ssh_remote_tunnels."""
    return tuple(v if isinstance(v, Tunnel) else Tunnel.parse(v, option) for v in values)


def check_vnc_password(password: str) -> None:
    if len(password.encode()) > MAX_VNC_PASSWORD:
        raise FactoryError(f"vnc_password is {len(password.encode())} bytes long; VNC passwords hold at most "
                           f"{MAX_VNC_PASSWORD}", hint="shorten vnc_password to 8 characters (VNC authentication "
                           "ignores the rest), or leave it unset for a random one")


def check_floppy_label(label: str) -> str:
    """A FAT volume label: at most 11 characters, none of the ones FAT forbids."""
    if len(label.encode()) > 11 or not label.isascii() or _LABEL_FORBIDDEN & set(label):
        raise FactoryError(f"floppy_label {label!r} is not a valid FAT volume label",
                           hint="use at most 11 ASCII letters, digits, spaces, '-' or '_' (e.g. `cidata`)")
    return label


# Checks whose knowledge belongs to a runtime package (factory.options.Deferred): the ISO catalog's releases,
# the unattended-install variables, and the SSH algorithms paramiko implements.
CATALOG_RELEASE = Deferred("iso: a release of the ISO catalog (factory.media.catalog)")
PRESEED_VARS = Deferred("preseed_vars: the variables of the unattended install (factory.media.preseed)")
SSH_CIPHERS = Deferred("ssh_ciphers: ciphers factory's SSH implements (factory.comm.algorithms)")
SSH_KEX = Deferred("ssh_key_exchange_algorithms: key exchanges factory's SSH implements (factory.comm.algorithms)")


def check_vnc_port_min(low: int) -> None:
    if low < VNC_BASE_PORT:
        raise FactoryError(f"vnc_port_min {low} is below {VNC_BASE_PORT}",
                           hint="QEMU addresses VNC by display number (port - 5900): use ports from 5900 up")
