"""Disk exporters, one class per format, registered by name: `export(disk, "ova", out, hardware=...)`.

Each exporter turns a qcow2 or raw disk into the files a target platform consumes and returns their paths.
Outputs appear atomically (temp name beside the target, renamed on success).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from factory import events
from factory.artifact import digests, ovf
from factory.artifact.compaction import compact
from factory.artifact.model import Hardware
from factory.artifact.source import DiskSource, image_info, open_disk
from factory.artifact.tario import HashingWriter, TarWriter, fixed_mtime, gzip_writer
from factory.artifact.vmdk import Adapter, write_stream_optimized
from factory.errors import FactoryError
from factory.fsutil import atomic_path, check_output_file
from factory.options import suggest
from factory.run import run

MIB = 1 << 20
GIB = 1 << 30
MANIFEST_HASHES = ("sha256", "sha1")


@dataclass(frozen=True)
class ExportOptions:
    """Knobs shared by the exporters; each format reads the ones that concern it."""

    name: str = ""                    # VM / file stem inside packages (default: the output's stem)
    compress: bool = False            # qcow2: compressed clusters
    adapter: str | None = None        # VMDK adapter type (default: from the hardware's disk interface)
    hw_version: int = 14              # VMware virtual hardware version (vmx-NN) in OVF descriptors
    vmdk_hw_version: int = 4          # ddb.virtualHWVersion inside a bare VMDK
    manifest_hash: str = "sha256"     # OVA manifest: sha256, or sha1 for strict old tools
    guest_os: str = "linux"           # OVF guest OS: debian, ubuntu, rhel, linux
    compression_level: int = 6        # deflate level for VMDK grains and gzip
    vagrantfile_template: Path | None = None
    include: tuple[Path, ...] = ()    # Vagrant boxes: extra files packed beside the disk
    architecture: str | None = None   # Vagrant boxes: metadata.json's architecture (Packer's vagrant post-processor)


class Exporter:
    """Base of all exporters; subclasses register with `class X(Exporter, format="ova")`."""

    format: ClassVar[str]
    summary: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Exporter]]] = {}

    def __init_subclass__(cls, format: str | None = None, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if format is not None:
            cls.format = format
            Exporter.registry[format] = cls

    def __init__(self, hardware: Hardware, options: ExportOptions) -> None:
        self.hw, self.opts = hardware, options

    def run(self, disk: Path, out: Path) -> list[Path]:
        raise NotImplementedError


def formats() -> list[str]:
    """Names of every export format, sorted."""
    return sorted(Exporter.registry)


def exporter_for(fmt: str) -> type[Exporter]:
    """The exporter class of fmt, or a user error with a did-you-mean hint."""
    try:
        return Exporter.registry[fmt]
    except KeyError:
        near = suggest(fmt, formats())
        hint = f"did you mean {near!r}? " if near else ""
        raise FactoryError(f"unknown export format {fmt!r}",
                           hint=hint + "formats: " + ", ".join(formats())) from None


def export(disk: Path, fmt: str, out: Path, *, hardware: Hardware | None = None,
           options: ExportOptions | None = None, option: str = "-o") -> list[Path]:
    """Export disk (qcow2 or raw) as fmt to out; return the files written. out may not be a folder or the disk
    itself (same real path or inode): the atomic rename would replace the input. option names out in messages."""
    cls = exporter_for(fmt)
    check_output_file(Path(out), {"disk exported": Path(disk)}, option=option,
                      example="vm.box" if fmt.startswith("vagrant") else f"vm.{fmt}")
    image_info(Path(disk))   # one clear message for a missing or unreadable disk, before any work
    opts = options or ExportOptions()
    if opts.manifest_hash not in MANIFEST_HASHES:
        raise FactoryError(f"manifest hash {opts.manifest_hash!r} is not supported",
                           hint="use sha256 (default) or sha1")
    return cls(hardware or Hardware(), opts).run(Path(disk), Path(out))


def _stem(out: Path, opts: ExportOptions) -> str:
    return opts.name or out.name.split(".")[0] or "vm"


class Qcow2Exporter(Exporter, format="qcow2"):
    summary = "compacted qcow2 (optionally compressed)"

    def run(self, disk: Path, out: Path) -> list[Path]:
        return [compact(disk, out, compress=self.opts.compress)]


class _QemuImgExporter(Exporter):
    """Formats qemu-img writes well by itself."""

    qemu_format: ClassVar[str]
    qemu_options: ClassVar[tuple[str, ...]] = ()

    def run(self, disk: Path, out: Path) -> list[Path]:
        info = image_info(disk)
        with atomic_path(out) as tmp, events.progress(f"converting {disk.name} to {self.format}", None):
            opts = ["-o", ",".join(self.qemu_options)] if self.qemu_options else []
            run(["qemu-img", "convert", "-f", info.format, "-O", self.qemu_format, *opts, disk, tmp])
        return [out]


class RawExporter(_QemuImgExporter, format="raw"):
    summary = "raw disk image (sparse)"
    qemu_format = "raw"


class VhdxExporter(_QemuImgExporter, format="vhdx"):
    summary = "Hyper-V VHDX (dynamic)"
    qemu_format = "vhdx"


class VhdExporter(Exporter, format="vhd"):
    """Azure's VHD: fixed subformat, virtual size a whole number of MiB, footer sized to match."""

    summary = "fixed VHD for Azure (size rounded up to whole MiB)"

    def run(self, disk: Path, out: Path) -> list[Path]:
        info = image_info(disk)
        size = -(-info.virtual_size // MIB) * MIB
        with _resized(info.path, info.format, size, out.parent) as (src, fmt), atomic_path(out) as tmp, \
                events.progress(f"converting {disk.name} to a fixed VHD", None):
            run(["qemu-img", "convert", "-f", fmt, "-O", "vpc", "-o", "subformat=fixed,force_size", src, tmp])
        return [out]


@contextlib.contextmanager
def _resized(disk: Path, fmt: str, size: int, scratch: Path) -> Iterator[tuple[Path, str]]:
    """disk as seen with virtual size `size`: itself, or a throwaway qcow2 overlay grown to size (no copy)."""
    if image_info(disk).virtual_size == size:
        yield disk, fmt
        return
    scratch.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".factory-resize-", dir=scratch) as tmp:
        overlay = Path(tmp) / "grown.qcow2"
        run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", disk.resolve(), "-F", fmt, overlay, str(size)])
        yield overlay, "qcow2"


class VmdkExporter(Exporter, format="vmdk"):
    """streamOptimized VMDK, written by factory.artifact.vmdk (parallel, sparse, reproducible)."""

    summary = "streamOptimized VMDK (adapter and hardware version settable)"

    def run(self, disk: Path, out: Path) -> list[Path]:
        adapter = _adapter(self.opts, self.hw)
        with open_disk(disk, scratch=out.parent) as src, atomic_path(out) as tmp, open(tmp, "wb") as fh, \
                events.progress(f"writing {out.name}", src.virtual_size, activity="export") as bar:
            writer = HashingWriter(fh)
            write_stream_optimized(src, writer.write, name=out.name, adapter=adapter,
                                   hw_version=self.opts.vmdk_hw_version, level=self.opts.compression_level,
                                   on_progress=bar.advance)
        digests.remember(out, "sha256", writer.hexdigest())
        return [out]


def _adapter(opts: ExportOptions, hw: Hardware) -> Adapter:
    name = opts.adapter or ovf.controller_for(hw)[2]
    try:
        return Adapter(name)
    except ValueError:
        raise FactoryError(f"unknown VMDK adapter type {name!r}",
                           hint="use one of: " + ", ".join(a.value for a in Adapter)) from None


@dataclass(frozen=True)
class OvaParts:
    ovf_name: str
    mf_name: str
    vmdk_name: str


class OvaExporter(Exporter, format="ova"):
    """OVF 1.0 package in one pass: .ovf, .mf, .vmdk in a USTAR tar; the VMDK is hashed as it is written.

    The .ovf (which names the VMDK's size) and the .mf (which holds its digest) precede the VMDK, as OVF 1.x
    requires, so their space is reserved and filled in once the VMDK is out: nothing is read back.
    """

    summary = "OVF 1.0 + streamOptimized VMDK + manifest in a USTAR tar (VirtualBox, VMware)"

    def run(self, disk: Path, out: Path) -> list[Path]:
        name = _stem(out, self.opts)
        parts = OvaParts(f"{name}.ovf", f"{name}.mf", f"{name}-disk1.vmdk")
        with open_disk(disk, scratch=out.parent) as src, atomic_path(out) as tmp, open(tmp, "w+b") as fh, \
                events.progress(f"writing {out.name}", src.virtual_size, activity="export") as bar:
            # The members are hashed as written (for the .mf); the .ova itself is not, because the headers of
            # the .ovf and .mf before the VMDK are filled in afterwards.
            write_package(src, TarWriter(fh), parts, self.hw, self.opts, bar.advance)
        return [out]


def write_package(src: DiskSource, tar: TarWriter, parts: OvaParts, hw: Hardware, opts: ExportOptions,
                  on_progress: Callable[[int], None] | None = None) -> None:
    """Write .ovf, .mf and the VMDK of src into tar (the OVA layout; Vagrant's virtualbox box reuses it)."""
    algo = opts.manifest_hash
    capacity = -(-src.virtual_size // 512) * 512

    def descriptor(size: int | None) -> bytes:
        return ovf.render(parts.ovf_name.rsplit(".", 1)[0], hw,
                          ovf.DiskRef(parts.vmdk_name, size, capacity, src.data_bytes),
                          hw_version=opts.hw_version, os_name=opts.guest_os)

    # Reserve room for the largest size the descriptor could name; the slack becomes trailing whitespace,
    # which XML allows after the root element.
    ovf_slot = tar.reserve(parts.ovf_name, len(descriptor(10**19)))
    placeholder = "0" * hashlib.new(algo).digest_size * 2
    mf_slot = tar.reserve(parts.mf_name, len(_manifest(algo, {parts.ovf_name: placeholder,
                                                              parts.vmdk_name: placeholder})))
    with tar.stream(parts.vmdk_name, (algo,)) as member:
        write_stream_optimized(src, member.write, name=parts.vmdk_name, adapter=_adapter(opts, hw),
                               hw_version=opts.vmdk_hw_version, level=opts.compression_level,
                               on_progress=on_progress)
    final = descriptor(member.size)
    final += b" " * (ovf_slot.size - len(final))
    tar.fill(ovf_slot, final)
    tar.fill(mf_slot, _manifest(algo, {parts.ovf_name: hashlib.new(algo, final).hexdigest(),
                                       parts.vmdk_name: member.hexdigest(algo)}))
    tar.close()


def write_ovf_files(src: DiskSource, directory: Path, parts: OvaParts, hw: Hardware, opts: ExportOptions,
                    on_progress: Callable[[int], None] | None = None) -> list[Path]:
    """The unpacked OVF layout (.ovf, .mf, .vmdk files in directory), the VMDK hashed as it is written."""
    vmdk = directory / parts.vmdk_name
    with open(vmdk, "wb") as fh:
        writer = HashingWriter(fh, (opts.manifest_hash,))
        write_stream_optimized(src, writer.write, name=parts.vmdk_name, adapter=_adapter(opts, hw),
                               hw_version=opts.vmdk_hw_version, level=opts.compression_level,
                               on_progress=on_progress)
    capacity = -(-src.virtual_size // 512) * 512
    text = ovf.render(parts.ovf_name.rsplit(".", 1)[0], hw,
                      ovf.DiskRef(parts.vmdk_name, writer.size, capacity, src.data_bytes),
                      hw_version=opts.hw_version, os_name=opts.guest_os)
    (directory / parts.ovf_name).write_bytes(text)
    (directory / parts.mf_name).write_bytes(_manifest(opts.manifest_hash, {
        parts.ovf_name: hashlib.new(opts.manifest_hash, text).hexdigest(),
        parts.vmdk_name: writer.hexdigest(opts.manifest_hash)}))
    return [directory / parts.ovf_name, directory / parts.mf_name, vmdk]


def _manifest(algo: str, files: dict[str, str]) -> bytes:
    label = algo.upper()
    return "".join(f"{label}({name})= {digest}\n" for name, digest in files.items()).encode()


class GceExporter(Exporter, format="gce"):
    """Google Compute Engine import: `disk.raw` (whole GiB, GPT backup at the end) in a sparse GNU tar.gz.

    GNU tar writes the sparse member: Python's tarfile cannot produce sparse (type 'S') members, and a
    non-sparse disk.raw would put every hole into the gzip stream.
    """

    summary = "GCE image: disk.raw (whole GiB, GPT relocated) in a GNU sparse tar.gz"

    def run(self, disk: Path, out: Path) -> list[Path]:
        info = image_info(disk)
        size = -(-info.virtual_size // GIB) * GIB
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".factory-gce-", dir=out.parent) as tmpdir, \
                events.progress(f"writing {out.name}", None):
            raw = Path(tmpdir) / "disk.raw"
            run(["qemu-img", "convert", "-f", info.format, "-O", "raw", disk, raw])
            os.truncate(raw, size)
            if _has_gpt(raw):
                run(["sgdisk", "-e", raw])   # move the backup GPT header to the new last sector
            os.chmod(raw, 0o644)
            with atomic_path(out) as tmp:
                run(["tar", "--create", "--sparse", "--format=gnu", f"--mtime=@{fixed_mtime()}", "--owner=0",
                     "--group=0", "--numeric-owner", "--sort=name", "--use-compress-program=gzip -n",
                     "-C", tmpdir, "-f", tmp, "disk.raw"])
        return [out]


def _has_gpt(raw: Path) -> bool:
    with open(raw, "rb") as fh:
        fh.seek(512)
        return fh.read(8) == b"EFI PART"


def write_box(out: Path, members: list[tuple[str, Path | bytes]], level: int) -> None:
    """A Vagrant box: tar.gz with fixed owners, mtimes and order, gzip header without name or time."""
    with atomic_path(out) as tmp, open(tmp, "wb") as raw, \
            gzip_writer(raw, level) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = fixed_mtime(), 0o644, 0, 0, "", ""
            if isinstance(content, bytes):
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.size = content.stat().st_size
                with open(content, "rb") as fh:
                    tar.addfile(info, fh)


def metadata_json(data: dict[str, object]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


