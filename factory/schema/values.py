"""Structured option values and their syntax rules, shared by the declarations and the runtime that acts on them.

They live here, not in machine/, media/ or comm/, so the schema imports no runtime package: the runtime imports
these (e.g. the QEMU driver takes a `DiskToolArgs`, the communicator a `Tunnel`), never the other way round.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from factory.errors import FactoryError
from factory.options import Deferred

VNC_BASE_PORT = 5900            # QEMU takes a display number: port - 5900
MAX_PORT = 65535                # TCP ports: 1..65535 (0 would mean "any port" to the kernel, never what a user means)
MAX_CPUS = 1024                 # QEMU's highest max_cpus (q35 with x2APIC); KVM's KVM_MAX_VCPUS is the same order
# Packer's qemu builder silently replaces memory below 10 MiB with 512; factory refuses it instead.
MIN_MEMORY_MIB = 10
MAX_MEMORY_MIB = 16 * 1024 * 1024   # 16 TiB: more than any x86 host QEMU runs on, and keeps -m from overflowing
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


# Packer's iso_checksum algorithms (go-getter's), by hex length: a bare hex digest is recognised by its length.
CHECKSUM_ALGORITHMS = {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}
ALGO_OF_LENGTH = {n: a for a, n in CHECKSUM_ALGORITHMS.items()}
_HEX = frozenset("0123456789abcdefABCDEF")
_CHECKSUM_HINT = ("write sha256:HEX (64 hex digits; md5: 32, sha1: 40, sha512: 128), bare HEX (type from its "
                  "length), file:URL-or-path of a checksum list (SHA256SUMS), or none")


class CheckKind(StrEnum):
    SHA256 = "sha256"
    DIGEST = "digest"  # md5 / sha1 / sha512 (Packer templates use them); the cache still keys by sha256
    FILE = "file"
    NONE = "none"


@dataclass(frozen=True)
class Digest:
    algo: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algo} {self.hex}"


@dataclass(frozen=True)
class Checksum:
    """A parsed checksum spec: `sha256:HEX` (or md5/sha1/sha512), bare HEX, `file:URL-or-path` or `none`.

    The one parser of this syntax: `validate` checks iso_checksum (and the CLI's --iso-checksum) with it, and the
    media cache verifies downloads with what it returns."""

    kind: CheckKind
    value: str = ""
    algo: str = "sha256"

    @classmethod
    def parse(cls, spec: str) -> Checksum:
        if not isinstance(spec, str):
            raise FactoryError(f"checksum {spec!r}: a string is required", hint=_CHECKSUM_HINT)
        text = spec.strip()
        if text.lower() == "none":
            return cls(CheckKind.NONE)
        algo, sep, value = text.partition(":")
        algo = algo.lower()
        if not sep:
            if not text or set(text) - _HEX:
                raise FactoryError(f"checksum {spec!r}: neither TYPE:VALUE, hex digits nor none",
                                   hint=_CHECKSUM_HINT)
            if len(text) not in ALGO_OF_LENGTH:
                raise FactoryError(f"checksum {spec!r}: {len(text)} hex digits match no algorithm",
                                   hint=_CHECKSUM_HINT)
            algo, value = ALGO_OF_LENGTH[len(text)], text
        if algo == "file":
            if not value.strip():
                raise FactoryError(f"checksum {spec!r}: file: names no checksum list", hint=_CHECKSUM_HINT)
            return cls(CheckKind.FILE, value.strip())
        want = CHECKSUM_ALGORITHMS.get(algo)
        if want is None:
            raise FactoryError(f"checksum {spec!r}: unknown algorithm {algo!r}",
                               hint="algorithms: md5, sha1, sha256, sha512; " + _CHECKSUM_HINT)
        if not value or set(value) - _HEX or len(value) != want:
            got = f"{value[:20]!r} is not hex" if set(value) - _HEX else f"got {len(value)}"
            raise FactoryError(f"checksum {spec!r}: {algo} digests are {want} hex digits; {got}",
                               hint=_CHECKSUM_HINT)
        return cls(CheckKind.SHA256 if algo == "sha256" else CheckKind.DIGEST, value.lower(), algo)


def check_checksum(spec: str) -> Checksum:
    """iso_checksum's `check=`: the spec parses (the download itself verifies it later)."""
    return Checksum.parse(spec)


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


_NAME_HINT = "use a plain file name such as \"debian-12\": no '/', no NUL, not '.' or '..', at most 200 bytes"


def file_name_check(option: str) -> Callable[[str], str]:
    """The `check=` of an option whose value becomes a file name in the output folder."""
    return lambda name: check_file_name(name, option)


def check_file_name(name: str, option: str = "vm_name") -> str:
    """A name factory turns into a file inside the output folder (vm_name, output_filename): one path part, so
    it can neither climb out of the folder (`..`, `a/../../b`) nor name the folder itself."""
    if not isinstance(name, str):
        return name
    why = ("is empty" if not name.strip() else "contains a NUL byte" if "\0" in name else
           "contains '/'" if "/" in name or "\\" in name else "is '.' or '..'" if name in (".", "..") else
           "is longer than 200 bytes" if len(name.encode()) > 200 else "")
    if why:
        raise FactoryError(f"{option} {name[:60]!r} {why}: it names a file in the output folder", hint=_NAME_HINT)
    return name


def check_output_directory(path: str) -> str:
    """output_directory may be any folder except one that holds what the build reads: refused when it is the
    folder factory runs in, `/`, the home folder or a parent of the working folder (`.`, `..`, `../..`), where
    `-force` would delete the template. The build checks the resolved path again (and the -force marker)."""
    if not isinstance(path, str):
        return path
    norm = os.path.normpath(path) if path.strip() else ""
    parts = norm.split(os.sep)
    if "\0" in path:
        why = "contains a NUL byte"
    elif norm in ("", ".", os.sep, "//") or all(p == ".." for p in parts):
        why = "is the folder factory runs in, one of its parents or /"
    elif norm == "~" or (norm.startswith("~") and os.sep not in norm):
        why = "is a home folder"
    else:
        return path
    raise FactoryError(f"output_directory {path!r} {why}: factory replaces the output folder as a whole",
                       hint='use a folder of its own, e.g. output_directory = "output-debian"')


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
