"""`source "libvirt"`: the community libvirt builder's options (thomasklein94/packer-plugin-libvirt) plus factory's.

The plugin configures volumes, network interfaces and graphics with nested blocks. Each block kind is declared
once here as a frozen dataclass whose fields are the block's keys; `parse_blocks` turns the HCL values into
those dataclasses, so unknown keys get "did you mean" and missing ones a clear message at validate time.
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from factory.errors import FactoryError
from factory.options import Component, Kind, Support, opt, suggest
from factory.schema.common import BootOptions, CommunicatorOptions, HttpOptions, ShutdownOptions, SourceOptions
from factory.schema.types import Checked, OptionProblem, parse_size_mib
from factory.schema.values import MAX_CPUS, MAX_MEMORY_MIB, MIN_MEMORY_MIB, check_output_directory

IGNORED = Support.IGNORED
_ALIAS = re.compile(r"[A-Za-z0-9_-]+")

SOURCE_TYPES = ("external", "http", "cloning", "backing-store", "cloud-init", "files")
INTERFACE_TYPES = ("user", "managed", "bridge")
ADDRESS_SOURCES = ("agent", "lease", "arp")
SHUTDOWN_MODES = ("acpi", "guest", "initctl", "signal", "paravirt")


@dataclass(frozen=True)
class VolumeSource:
    """`volume { source { ... } }`: where a volume's content comes from."""

    type: str
    urls: tuple[str, ...] = ()             # external: tried in order (http, https, file://, plain paths)
    url: str | None = None                 # http: the plugin's older single-URL form
    checksum: str | None = None            # external/http: `sha256:HEX`, `file:URL`, `none`
    pool: str | None = None                # backing-store/cloning: pool of `volume`
    volume: str | None = None              # backing-store/cloning: an existing volume
    path: str | None = None                # backing-store: a file on the libvirt host instead of pool+volume
    user_data: str | None = None           # cloud-init
    meta_data: str | None = None           # cloud-init (default: instance-id = domain name)
    network_config: str | None = None      # cloud-init
    files: tuple[str, ...] = ()            # files: put at the root of a CD
    contents: dict[str, str] = field(default_factory=dict)  # files: path -> content
    label: str | None = None               # files: CD volume label

    @property
    def download_urls(self) -> tuple[str, ...]:
        return self.urls or ((self.url,) if self.url else ())


@dataclass(frozen=True)
class Volume:
    """`volume { ... }`: one disk of the build domain, a libvirt storage volume."""

    pool: str = "default"
    name: str | None = None                # default `<domain name>-<alias or index>`
    source: VolumeSource | None = None
    size: str | None = None                # allocation
    capacity: str | None = None
    readonly: bool = False
    target_dev: str | None = None
    bus: str | None = None
    alias: str | None = None
    format: str | None = None

    @property
    def capacity_mib(self) -> int | None:
        return parse_size_mib(self.capacity, what="capacity") if self.capacity else None


@dataclass(frozen=True)
class NetworkInterface:
    """`network_interface { ... }`: `user` (factory: loopback port forward), `managed` network or `bridge`."""

    type: str
    alias: str | None = None
    mac: str | None = None
    model: str = "virtio"
    network: str = "default"               # managed
    bridge: str | None = None              # bridge


@dataclass(frozen=True)
class Graphics:
    """`graphics { ... }`: a `vnc` or `sdl` display (a virtio video device comes with it)."""

    type: str
    port: int | None = None                # vnc; 0 = any free port, unset = autoport
    display: str | None = None             # sdl: X11 display


T = TypeVar("T")


def _block(cls: type[T], value: Any, where: str) -> T:
    """One block's map as cls, naming unknown keys (with a close match) and missing required keys."""
    if not isinstance(value, dict):
        raise FactoryError(f"{where} must be a block", hint=f"write {where.split('[')[0]} {{ ... }}")
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, item in value.items():
        if key not in fields:
            near = suggest(key, fields)
            raise FactoryError(f"{where}: unknown key {key!r}",
                               hint=f"did you mean {near!r}?" if near else "keys: " + ", ".join(fields))
        if item is None:
            continue
        kwargs[key] = _convert(item, hints[key], f"{where}.{key}")
    missing = [n for n, f in fields.items()
               if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in kwargs]
    if missing:
        raise FactoryError(f"{where}: missing {', '.join(missing)}")
    return cls(**kwargs)


def _convert(item: Any, tp: Any, where: str) -> Any:
    if VolumeSource in (tp, *typing.get_args(tp)):
        return parse_source(item[0] if isinstance(item, list) and len(item) == 1 else item, where)
    if typing.get_origin(tp) is tuple:
        items = item if isinstance(item, list | tuple) else [item]
        if not all(isinstance(i, str) for i in items):
            raise FactoryError(f"{where} must be a list of strings")
        return tuple(items)
    if typing.get_origin(tp) is dict:
        if not isinstance(item, dict):
            raise FactoryError(f"{where} must be a map of strings")
        return {str(k): str(v) for k, v in item.items()}
    wanted = [a for a in (typing.get_args(tp) or (tp,)) if a is not type(None)]
    if bool in wanted:
        if not isinstance(item, bool):
            raise FactoryError(f"{where} must be true or false, got {item!r}")
        return item
    if int in wanted:
        if isinstance(item, bool) or not isinstance(item, int):
            raise FactoryError(f"{where} must be a whole number, got {item!r}")
        return item
    if isinstance(item, bool) or not isinstance(item, str | int | float):
        raise FactoryError(f"{where} must be a string, got {item!r}")
    return str(item)


def _choice(value: str, allowed: tuple[str, ...], where: str) -> None:
    if value not in allowed:
        near = suggest(value, allowed)
        raise FactoryError(f"{where}: invalid value {value!r}; allowed: {', '.join(allowed)}",
                           hint=f"did you mean {near!r}?" if near else None)


def _alias(alias: str | None, where: str) -> None:
    if alias is not None and not _ALIAS.fullmatch(alias):
        raise FactoryError(f"{where}.alias {alias!r} may hold only letters, digits, _ and -",
                           hint="libvirt requires [a-zA-Z0-9_-]; factory adds the `ua-` prefix itself")


def parse_source(value: Any, where: str) -> VolumeSource:
    src = _block(VolumeSource, value, where)
    _choice(src.type, SOURCE_TYPES, f"{where}.type")
    needs = {"external": bool(src.urls or src.url), "http": bool(src.url or src.urls),
             "cloning": bool(src.volume), "backing-store": bool(src.volume or src.path),
             "files": bool(src.files or src.contents)}
    if not needs.get(src.type, True):
        what = {"external": "urls", "http": "url", "cloning": "volume", "backing-store": "volume (or path)",
                "files": "files or contents"}[src.type]
        raise FactoryError(f"{where}: a {src.type} source needs {what}")
    if src.type == "backing-store" and src.path and (src.pool or src.volume):
        raise FactoryError(f"{where}: path and pool/volume cannot both be set",
                           hint="a backing store is either a file on the libvirt host or a volume in a pool")
    return src


def parse_volumes(value: list[dict[str, Any]]) -> tuple[Volume, ...]:
    volumes = []
    for i, item in enumerate(value):
        where = f"volume[{i}]"
        vol = _block(Volume, item, where)
        _alias(vol.alias, where)
        for name in ("size", "capacity"):
            text = getattr(vol, name)
            if text is not None:
                _bytes(text, f"{where}.{name}")
        if vol.source is None and not vol.name:
            raise FactoryError(f"{where}: a volume without a source names an existing volume: set name",
                               hint="or give it a source { type = ... } for factory to create it")
        volumes.append(vol)
    return tuple(volumes)


def _bytes(text: str, where: str) -> int:
    """Sizes the plugin writes as libvirt does (`10G`, `512M`, bytes when unitless) -> bytes."""
    raw = text.strip()
    if raw.isdigit():
        return int(raw)
    return parse_size_mib(raw, what=where) * 1024 * 1024


def volume_bytes(text: str) -> int:
    return _bytes(text, "size")


def parse_interfaces(value: list[dict[str, Any]]) -> tuple[NetworkInterface, ...]:
    out = []
    for i, item in enumerate(value):
        where = f"network_interface[{i}]"
        nic = _block(NetworkInterface, item, where)
        _choice(nic.type, INTERFACE_TYPES, f"{where}.type")
        _alias(nic.alias, where)
        if nic.type == "bridge" and not nic.bridge:
            raise FactoryError(f"{where}: a bridge interface needs bridge (the host bridge's name)")
        out.append(nic)
    return tuple(out)


def parse_graphics(value: list[dict[str, Any]]) -> tuple[Graphics, ...]:
    out = []
    for i, item in enumerate(value):
        where = f"graphics[{i}]"
        gfx = _block(Graphics, item, where)
        _choice(gfx.type, ("vnc", "sdl"), f"{where}.type")
        if gfx.type == "sdl" and not gfx.display:
            raise FactoryError(f"{where}: an sdl display needs display (an X11 display such as \":0\")")
        out.append(gfx)
    return tuple(out)


# The keys a `communicator { }` block may hold: every communicator option factory declares.
_COMM_KEYS = frozenset(f.name for f in dataclasses.fields(CommunicatorOptions))


def _communicator(value: object) -> object:
    if isinstance(value, list):
        if len(value) != 1:
            raise FactoryError("communicator: one block at most")
        value = value[0]
    if not isinstance(value, dict):
        return value
    for key in value:
        if key not in _COMM_KEYS:
            near = suggest(key, _COMM_KEYS)
            raise FactoryError(f"communicator: unknown key {key!r}",
                               hint=f"did you mean {near!r}?" if near else "the communicator block holds "
                               "communicator options such as ssh_username, ssh_password, ssh_timeout")
    return value


@dataclass(frozen=True)
class LibvirtSource(HttpOptions, BootOptions, ShutdownOptions, CommunicatorOptions, Checked, Component,
                    kind=Kind.SOURCE, name="libvirt"):
    """A libvirt domain on a local or remote host, built from storage volumes."""

    summary: ClassVar[str] = ("Builds a machine image through libvirt (`qemu:///system`, `qemu:///session` or a "
                              "remote `qemu+ssh://` host): creates storage volumes, defines and starts a domain, "
                              "provisions it over SSH and keeps the artifact volume (and downloads it when "
                              "`output_directory` is set).")

    # connection and domain ------------------------------------------------------------------------------------
    libvirt_uri: str = opt(required=True, help="libvirt connection URI: `qemu:///system`, `qemu:///session` (a "
                           "user daemon) or a remote `qemu+ssh://user@host/system`.")
    domain_name: str | None = opt(None, help="Name of the build domain (default `factory-<source name>-<build "
                                  "id>`). An existing domain of that name is an error, never replaced.")
    memory: int = opt(512, minimum=MIN_MEMORY_MIB, maximum=MAX_MEMORY_MIB, help="Memory of the domain in MiB.")
    vcpu: int = opt(1, minimum=1, maximum=MAX_CPUS, help="Number of virtual CPUs.")
    cpu_mode: str | None = opt(None, help="CPU mode, e.g. `host-passthrough` or `host-model` (default: "
                               "libvirt's choice).")
    domain_type: str | None = opt(None, help="Domain type. factory uses `kvm` only when its accelerator probe "
                                  "finds KVM working, else `qemu` (TCG); set it to force one.")
    arch: str = opt("x86_64", help="Guest architecture.")
    chipset: str | None = opt(None, help="Machine type, e.g. `q35` or `pc` (default: libvirt's).")
    loader_path: str | None = opt(None, help="Firmware file on the libvirt host (e.g. an OVMF_CODE build).")
    loader_type: str | None = opt(None, help="How the firmware is mapped: `rom` or `pflash`.")
    secure_boot: bool = opt(False, help="Tell libvirt the firmware implements Secure Boot (it does not "
                            "enable the feature).")
    nvram_path: str | None = opt(None, help="UEFI variable store of the domain on the libvirt host.")
    nvram_template: str | None = opt(None, help="Template copied to `nvram_path` (e.g. an OVMF_VARS build).")
    boot_devices: list[str] = opt([], help="Boot order among `hd`, `cdrom` and `network` (default: the first "
                                  "volume).")

    # devices ----------------------------------------------------------------------------------------------------
    volume: list[dict[str, Any]] = opt(required=True, help="Storage volumes attached as disks, one `volume { }` "
                                       "block each: "
                                       "`pool` (default `default`), `name`, `alias`, `format`, `capacity`, "
                                       "`size`, `readonly`, `bus`, `target_dev`, and `source { type = ... }` "
                                       "with type `external` (`urls`, `checksum`; http, https, file), `http` "
                                       "(`url`), `cloning` (`pool`, `volume`), `backing-store` (`pool`, "
                                       "`volume` or `path`), `cloud-init` (`user_data`, `meta_data`, "
                                       "`network_config`) or `files` (`files`, `contents`, `label`). A volume "
                                       "with a source must not exist before the build; factory creates and "
                                       "removes it (except the artifact).")
    artifact_volume_alias: str = opt("artifact", help="Alias of the volume kept as the artifact (the only "
                                     "volume when there is one).")
    network_interface: list[dict[str, Any]] = opt([], help="Network interfaces, one `network_interface { }` "
                                                  "block each: `type` = `user` (factory: user-mode networking "
                                                  "with the guest's SSH port forwarded to 127.0.0.1; the "
                                                  "default when none is declared), `managed` (`network`, "
                                                  "default `default`) or `bridge` (`bridge`); `alias`, `mac`, "
                                                  "`model` (default `virtio`).")
    communicator_interface: str = opt("communicator", help="Alias of the interface SSH connects through when "
                                      "there are several.")
    network_address_source: str = opt("agent", help="How the address of a `managed` or `bridge` interface is "
                                      "found: `agent` (qemu-guest-agent), `lease` (the network's DHCP leases) "
                                      "or `arp` (the host's ARP table). A `user` interface needs none.")
    graphics: list[dict[str, Any]] = opt([], help="Displays, one `graphics { }` block each: `type` = `vnc` "
                                         "(`port`) or `sdl` (`display`). Headless by default.")
    shutdown_mode: str | None = opt(None, help="How libvirt shuts the domain down: `acpi`, `guest`, "
                                    "`initctl`, `signal` or `paravirt` (default: libvirt's choice).")

    # factory extras --------------------------------------------------------------------------------------------
    output_directory: str | None = opt(None, factory_only=True, check=check_output_directory,
                                       help="Also download the artifact volume to "
                                       "this local directory (by a volume stream, so a remote host works).")
    serial_log: str | None = opt(None, factory_only=True, help="File that receives the guest's serial console "
                                 "(default: in the build's log folder).")
    screenshot_on_failure: bool = opt(True, factory_only=True, help="Save a PNG screenshot of the display when "
                                      "the build fails.")

    # The plugin nests the communicator options in `communicator { }`; the flat form works too.
    communicator: str | dict[str, Any] = opt(  # type: ignore[assignment]
        "ssh", help="`ssh` (default) or `none`; or, as the libvirt plugin writes it, a `communicator { }` block "
        "holding the communicator options (`communicator`, `ssh_username`, ...).")

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "ssh_file_transfer_method": ("scp", "sftp"),
        "temporary_key_pair_type": ("ed25519", "ecdsa", "rsa", "dsa"),
        "network_address_source": ADDRESS_SOURCES,
        "shutdown_mode": SHUTDOWN_MODES,
        "loader_type": ("rom", "pflash"),
        "domain_type": ("kvm", "qemu"),
    }
    ORDERED: ClassVar[tuple[tuple[str, str], ...]] = SourceOptions.ORDERED
    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (("http_directory", "http_content"),
                                                        ("boot_command", "boot_steps"))
    # The template layer flattens a `communicator { }` block into the options the communicator reads (values
    # converted to their declared types); a bad block stays as it is, for VALIDATORS to report.
    LIFTED_BLOCKS: ClassVar[dict[str, frozenset[str]]] = {"communicator": _COMM_KEYS}
    VALIDATORS: ClassVar[dict[str, Callable[[Any], object]]] = {
        "volume": parse_volumes, "network_interface": parse_interfaces,
        "graphics": parse_graphics, "communicator": _communicator}

    def problems(self) -> list[OptionProblem]:
        out = []
        if self.communicator not in ("ssh", "winrm", "none") and not isinstance(self.communicator, dict | list):
            out.append(OptionProblem("communicator", f"invalid communicator {self.communicator!r}; allowed: ssh, "
                                     "winrm, none"))
        try:
            volumes = parse_volumes(self.volume or [])
        except FactoryError:
            return out   # reported by VALIDATORS
        if len(volumes) > 1 and not any(v.alias == self.artifact_volume_alias for v in volumes):
            out.append(OptionProblem("volume", f"{len(volumes)} volumes and none has alias "
                                     f"{self.artifact_volume_alias!r}", "mark the volume to keep with alias = "
                                     f"\"{self.artifact_volume_alias}\" (or set artifact_volume_alias)"))
        for dev in self.boot_devices:
            if dev not in ("hd", "cdrom", "network"):
                out.append(OptionProblem("boot_devices", f"invalid boot device {dev!r}; allowed: hd, cdrom, "
                                         "network"))
        return out

    @property
    def volumes(self) -> tuple[Volume, ...]:
        return parse_volumes(self.volume or [])

    @property
    def interfaces(self) -> tuple[NetworkInterface, ...]:
        return parse_interfaces(self.network_interface) or (NetworkInterface(type="user"),)

    @property
    def displays(self) -> tuple[Graphics, ...]:
        return parse_graphics(self.graphics)
