"""Steps before the VM starts: output directory, accelerator, media, disk, firmware, key, seed, HTTP, ports."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from factory.build import EventKind, Step
from factory.errors import FactoryError
from factory.machine import accel
from factory.machine.httpd import HttpServer
from factory.machine.keys import expand
from factory.machine.ports import reserve
from factory.steps.context import BuildContext
from factory.steps.seed import collect_files, nocloud_seed


class PrepareOutput(Step[BuildContext]):
    name, title = "output", "Preparing output directory"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"output_directory": str(ctx.s.output_directory), "vm_name": ctx.s.vm_name}

    def run(self, ctx: BuildContext) -> None:
        out = ctx.s.output_directory
        if out.exists() and (not out.is_dir() or any(out.iterdir())) and not ctx.force:
            raise FactoryError(f"output directory {out} already exists and is not empty",
                               hint="remove it, choose another output_directory, or pass -force")
        out.parent.mkdir(parents=True, exist_ok=True)
        # Built under a temporary name beside the final one and renamed on success (same filesystem).
        ctx.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
        ctx.staging.chmod(0o755)  # mkdtemp's 0700 would become the output directory's mode
        ctx.cleanups.push("remove unpublished output", lambda: _rmtree(ctx.staging))
        ctx.workdir = Path(tempfile.mkdtemp(prefix=f"factory-{ctx.s.vm_name}-"))
        ctx.cleanups.push("remove scratch directory", lambda: _rmtree(ctx.workdir))


def _rmtree(path: Path | None) -> None:
    if path is not None and path.exists():
        shutil.rmtree(path, ignore_errors=True)


class Accelerator(Step[BuildContext]):
    name, title = "accelerator", "Choosing the accelerator"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"accelerator": ctx.s.accelerator}

    def run(self, ctx: BuildContext) -> None:
        verdict = accel.resolve(ctx.s.accelerator, announce=False)
        ctx.accel, ctx.timeout_factor = verdict.accel.value, verdict.timeout_factor
        if verdict.accel is accel.Accel.TCG and ctx.s.accelerator in ("auto", ""):
            ctx.emit(EventKind.NOTICE, verdict.fallback_notice)
        else:
            ctx.say(f"accelerator: {verdict.accel.value} ({verdict.reason})")


class FetchMedia(Step[BuildContext]):
    name, title = "media", "Fetching the ISO / disk image"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        c = ctx.config
        return {"urls": _urls(c), "checksum": getattr(c, "iso_checksum", None)}

    def run(self, ctx: BuildContext) -> None:
        catalog_name = getattr(ctx.config, "iso", None)
        if catalog_name:
            from factory.media import catalog
            from factory.media.cache import fetch_release

            ctx.release = catalog.load(catalog_name)
            ctx.media = fetch_release(ctx.release)  # pinned sha256, or the vendor's signed SUMS
            ctx.say(f"media: {ctx.release.title}: {ctx.media}")
            return
        urls = _urls(ctx.config)
        if not urls:
            if ctx.s.disk_image:
                raise FactoryError("disk_image = true needs iso_url (the disk image to start from)")
            return
        from factory.media.cache import fetch

        resolved = [str(ctx.root / u) if "://" not in u and not Path(u).is_absolute() else u for u in urls]
        checksum = getattr(ctx.config, "iso_checksum", None) or "none"
        ctx.media = fetch(resolved, checksum)
        ctx.say(f"media: {ctx.media}")


def _urls(config: Any) -> list[str]:
    url = getattr(config, "iso_url", None)
    return [url] if url else list(getattr(config, "iso_urls", None) or [])


class CreateDisk(Step[BuildContext]):
    name, title = "disk", "Creating the disk"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        s = ctx.s
        return {"disk_image": s.disk_image, "use_backing_file": s.use_backing_file, "size": s.disk_size_mib,
                "format": s.format.value, "skip_resize": s.skip_resize_disk, "additional": list(s.disk_additional_mib)}

    def inputs(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"media": ctx.media}

    def run(self, ctx: BuildContext) -> None:
        assert ctx.driver is not None and ctx.staging is not None
        s = ctx.s
        disk = ctx.staging / f"{s.vm_name}.work"
        if s.disk_image:
            assert ctx.media is not None
            if s.use_backing_file:
                ctx.driver.overlay_disk(ctx.media, disk)
            else:
                ctx.driver.copy_disk(ctx.media, disk, s.format, None if s.skip_resize_disk else s.disk_size_mib)
        else:
            ctx.driver.create_disk(disk, s.disk_size_mib, s.format)
        ctx.disk = disk
        for n, size in enumerate(s.disk_additional_mib, start=1):
            extra = ctx.staging / f"{s.vm_name}-{n}"  # Packer's names for disk_additional_size
            ctx.driver.create_disk(extra, size, s.format)
            ctx.extra_disks.append(extra)


class Firmware(Step[BuildContext]):
    name, title = "firmware", "Preparing UEFI firmware"

    def applies(self, ctx: BuildContext) -> bool:
        from factory.artifact.model import Firmware as Fw

        return ctx.s.firmware is Fw.EFI

    def run(self, ctx: BuildContext) -> None:
        from factory.artifact.model import Firmware as Fw
        from factory.machine.firmware import UefiFirmware, find_uefi

        s = ctx.s
        if s.firmware is not Fw.EFI:
            return
        assert ctx.staging is not None
        if s.efi_code and s.efi_vars:
            fw = UefiFirmware(s.efi_code, s.efi_vars)
        else:
            found = find_uefi()
            fw = UefiFirmware(s.efi_code or found.code, s.efi_vars or found.vars_template)
        ctx.efi_code = fw.code
        ctx.efi_vars = fw.writable_vars(ctx.staging, "efivars.fd")


class SshKey(Step[BuildContext]):
    name, title = "ssh-key", "Preparing SSH credentials"

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.s.communicator == "ssh"

    def run(self, ctx: BuildContext) -> None:
        s = ctx.s
        if s.communicator != "ssh":
            return
        if s.ssh_password:
            from factory import secrets

            secrets.register(s.ssh_password)
        if not s.ssh_password and not s.ssh_private_key_file:
            from factory.comm.ssh import KeyPair

            ctx.keypair = KeyPair.generate(comment=f"factory-{s.vm_name}")
            ctx.say("generated an ephemeral ed25519 key pair for this build")
            if ctx.debug:
                assert ctx.workdir is not None
                key = ctx.keypair.write_private(ctx.s.output_directory.parent / f"{s.vm_name}.debug-key")
                ctx.say(f"-debug: private key written to {key}")


class Seed(Step[BuildContext]):
    name, title = "seed", "Making the CD (cd_files / cd_content)"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"cd_files": list(ctx.s.cd_files), "cd_content": ctx.s.cd_content, "cd_label": ctx.s.cd_label}

    def run(self, ctx: BuildContext) -> None:
        from factory.media.seed import make_iso

        s = ctx.s
        assert ctx.workdir is not None
        files = collect_files(ctx.root, s.cd_files, s.cd_content, ctx.template_values)
        label = s.cd_label or ("cidata" if s.disk_image else "")
        public_key = ctx.keypair.public_openssh if ctx.keypair is not None else None
        if label.lower() == "cidata" or (not files and s.disk_image and public_key):
            # A cloud image only gets a user through cloud-init: make (or complete) the NoCloud seed.
            files = nocloud_seed(files, username=s.ssh_username, public_key=public_key, instance_id=s.vm_name)
            label = "cidata"
        if not files:
            return
        ctx.seed = make_iso(files, ctx.workdir / "cd.iso", label=label or "cdrom")
        ctx.say(f"CD {label!r} with {len(files)} file(s): " + ", ".join(sorted(files)))


class Http(Step[BuildContext]):
    name, title = "http", "Starting the HTTP server"

    def applies(self, ctx: BuildContext) -> bool:
        return bool(ctx.s.http_directory or ctx.s.http_content or ctx.unattended_files)

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"http_directory": str(ctx.s.http_directory or ""), "http_content": ctx.s.http_content}

    def run(self, ctx: BuildContext) -> None:
        s = ctx.s
        if not s.http_directory and not s.http_content and not ctx.unattended_files:
            return
        if s.http_directory and not s.http_directory.is_dir():
            raise FactoryError(f"http_directory {s.http_directory} is not a directory")
        content = None
        if s.http_content or ctx.unattended_files:
            values = ctx.template_values
            content = {k: expand(v, values, where=f"http_content[{k!r}]").encode() for k, v in s.http_content.items()}
            content.update({"/" + k.lstrip("/"): v for k, v in ctx.unattended_files.items()})
        ctx.http = HttpServer(directory=s.http_directory, content=content, port_min=s.http_port_min,
                              port_max=s.http_port_max, bind=s.http_bind_address,
                              emit=lambda line: ctx.output("http", line))
        ctx.cleanups.push("stop HTTP server", ctx.http.stop)
        ctx.say(f"HTTP server on port {ctx.http.port} (guest: http://10.0.2.2:{ctx.http.port}/)")
        from factory.steps.unattended import finish_direct_boot

        finish_direct_boot(ctx)


class HostPort(Step[BuildContext]):
    name, title = "ssh-port", "Reserving the SSH host port"

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.s.communicator == "ssh"

    def run(self, ctx: BuildContext) -> None:
        if ctx.s.communicator != "ssh":
            return
        ctx.ssh_lease = reserve(ctx.s.host_port_min, ctx.s.host_port_max, purpose="SSH port forwarding")
        ctx.cleanups.push(f"release port {ctx.ssh_lease.port}", ctx.ssh_lease.release)
        ctx.say(f"SSH will be forwarded from 127.0.0.1:{ctx.ssh_lease.port}")
