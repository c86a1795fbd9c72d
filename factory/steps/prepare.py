"""Steps before the VM starts: output directory, accelerator, media, disk, firmware, key, seed, HTTP, ports."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from factory.build import EventKind, Step
from factory.errors import FactoryError
from factory.fsutil import OUTPUT_MARKER, atomic_path, check_output_dir, mark_output_dir
from factory.machine.driver import PortRange
from factory.machine.httpd import HttpServer
from factory.placeholders import expand
from factory.steps.context import BuildContext
from factory.steps.seed import collect_files, nocloud_seed


class PrepareOutput(Step[BuildContext]):
    name, title = "output", "Preparing output directory"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        # Where the output goes is no part of what is built (it is the finalize stage's option).
        return {"vm_name": ctx.vm_name}

    def run(self, ctx: BuildContext) -> None:
        out = ctx.output_directory
        check_output_dir(out, force=ctx.force, protected=protected_dirs(ctx))
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            # Built under a temporary name beside the final one and renamed on success (same filesystem).
            ctx.staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent))
        except OSError as exc:
            raise FactoryError(f"output_directory {out}: cannot create it in {out.parent}: {exc.strerror or exc}",
                               hint="choose an output_directory in a folder you can write to") from None
        ctx.staging.chmod(0o755)  # mkdtemp's 0700 would become the output directory's mode
        ctx.cleanups.push("remove unpublished output", lambda: _rmtree(ctx.staging))
        ctx.workdir = Path(tempfile.mkdtemp(prefix=f"factory-{ctx.vm_name}-"))
        ctx.cleanups.push("remove scratch directory", lambda: _rmtree(ctx.workdir))


def protected_dirs(ctx: BuildContext) -> dict[str, Path]:
    """Folders an output folder may never be (or hold): where factory runs and where the template is."""
    places = {"the folder factory runs in": ctx.root}
    for source in ctx.build.sources if ctx.build else []:
        where = source.where
        if source.name == ctx.source_name and where.file:
            places["the template's folder"] = (ctx.root / where.file).parent
    return places


def publish_output(ctx: BuildContext) -> Path:
    """Rename the staging folder onto output_directory (every builder's last step): checked again as PrepareOutput
    did (the folder may have changed during the build), marked as factory's own so a later -force may replace it."""
    assert ctx.staging is not None
    out = ctx.output_directory
    check_output_dir(out, force=ctx.force, protected=protected_dirs(ctx))
    mark_output_dir(ctx.staging, f"{ctx.build_name} ({ctx.vm_name})")
    replaced = None
    if out.exists():  # -force: renamed aside (instant), so the new output takes its place at once
        replaced = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".replaced", dir=out.parent))
        try:
            os.replace(out, replaced)
        except BaseException:
            replaced.rmdir()
            raise
    try:
        os.replace(ctx.staging, out)
    except BaseException:
        if replaced is not None:
            os.replace(replaced, out)
        raise
    ctx.staging = None
    if replaced is not None:
        # Freeing a disk image's blocks takes ~0.35 s per 400 MiB here (a filesystem mounted with discard): done
        # while the post-processors run, and waited for before the build ends.
        remover = threading.Thread(target=_rmtree, args=(replaced,), name="remove-replaced-output", daemon=True)
        remover.start()
        ctx.cleanups.push("remove the replaced output", remover.join)
    return out


def output_files(out: Path) -> tuple[Path, ...]:
    """The files of a published output folder, the marker left out (it is no artifact)."""
    return tuple(sorted(p for p in out.iterdir() if p.is_file() and p.name != OUTPUT_MARKER))


def _rmtree(path: Path | None) -> None:
    if path is not None and path.exists():
        shutil.rmtree(path, ignore_errors=True)


class Accelerator(Step[BuildContext]):
    name, title = "accelerator", "Choosing the accelerator"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"accelerator": ctx.s.accelerator}

    def run(self, ctx: BuildContext) -> None:
        assert ctx.driver is not None
        verdict = ctx.driver.probe(ctx.s.accelerator)
        ctx.accel, ctx.emulated, ctx.timeout_factor = verdict.name, verdict.emulated, verdict.timeout_factor
        if verdict.fallback_notice:
            ctx.emit(EventKind.NOTICE, verdict.fallback_notice)
        else:
            ctx.say(f"accelerator: {verdict.name} ({verdict.reason})")


class FetchMedia(Step[BuildContext]):
    name, title = "media", "Fetching the ISO / disk image"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        s = ctx.s
        return {"urls": s.iso_url_list, "checksum": s.iso_checksum, "skip_cache": s.iso_skip_cache,
                "target": str(ctx.path(s.iso_target_path) or ""), "extension": s.iso_target_extension}

    def inputs(self, ctx: BuildContext) -> Mapping[str, Any]:
        """A catalog release by its file; a local ISO without a checksum by its content (a checksum pins it)."""
        if catalog_name := ctx.s.iso:
            from factory.media.catalog import release_file

            return {"release": release_file(catalog_name)}
        if (ctx.s.iso_checksum or "none").lower() != "none":
            return {}
        local = [ctx.root / u.removeprefix("file://") for u in ctx.s.iso_url_list
                 if "://" not in u or u.startswith("file://")]
        return {"local": local[:1]}

    def run(self, ctx: BuildContext) -> None:
        catalog_name = ctx.s.iso
        if catalog_name:
            from factory.media import catalog
            from factory.media.cache import fetch_release

            ctx.release = catalog.load(catalog_name)
            ctx.media = fetch_release(ctx.release)  # pinned sha256, or the vendor's signed SUMS
            _hold(ctx, ctx.media)
            ctx.say(f"media: {ctx.release.title}: {ctx.media}")
            return
        urls = ctx.s.iso_url_list
        if not urls:
            if ctx.s.disk_image:
                raise FactoryError("disk_image = true needs iso_url (the disk image to start from)")
            return
        from factory.media.cache import fetch

        resolved = [str(ctx.root / u) if "://" not in u and not Path(u).is_absolute() else u for u in urls]
        checksum = ctx.s.iso_checksum or "none"
        if ctx.s.iso_skip_cache and (url := _direct_url(resolved)) is not None:
            ctx.media_url = url
            ctx.emit(EventKind.NOTICE, f"iso_skip_cache: QEMU reads {url} itself (curl block driver); "
                     "nothing is downloaded, so iso_checksum is not verified")
            return
        target = _target_path(ctx.path(ctx.s.iso_target_path), ctx.s.iso_target_extension, checksum, resolved[0])
        if target is not None and checksum.lower() != "none" and target.is_file() and _matches(target, checksum):
            ctx.media = target
        else:
            ctx.media = fetch(resolved, checksum)
            _hold(ctx, ctx.media)
            if target is not None:
                ctx.media = _place(ctx.media, target)
        ctx.say(f"media: {ctx.media}")


def _hold(ctx: BuildContext, media: Path) -> None:
    """Keep a stored ISO from `factory cache gc` while this build uses it."""
    from factory.store import Store

    store = Store()
    key = store.key_of(media)
    if key is not None:
        stack = contextlib.ExitStack()
        stack.enter_context(store.hold(key))
        ctx.cleanups.push("release the stored ISO", stack.close)


def _direct_url(urls: list[str]) -> str | None:
    """iso_skip_cache: the first URL answering a HEAD request with 200 (Packer's rule); None when the first
    usable entry is a local file (used in place anyway)."""
    failures = []
    for url in urls:
        if not url.startswith(("http://", "https://")):
            if Path(url.removeprefix("file://")).is_file():
                return None
            failures.append(f"{url}: not an http(s) URL or an existing file")
            continue
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30) as resp:
                if resp.status == 200:
                    return url
                failures.append(f"{url}: HTTP {resp.status}")
        except urllib.error.HTTPError as exc:
            failures.append(f"{url}: HTTP {exc.code} {exc.reason}")
        except (urllib.error.URLError, OSError) as exc:
            failures.append(f"{url}: {getattr(exc, 'reason', exc)}")
    raise FactoryError("iso_skip_cache: no ISO URL answered a HEAD request with 200:\n  " + "\n  ".join(failures),
                       hint="check the URL, or drop iso_skip_cache to download through factory's cache")


def _target_path(target: Path | None, extension: str, checksum: str, url: str) -> Path | None:
    """Packer's iso_target_path: a path with an extension is the file; one without is a directory that gets
    sha1(checksum, or the URL when there is none).<iso_target_extension>."""
    if target is None or target.suffix:
        return target
    key = checksum if checksum.lower() != "none" else url
    return target / f"{hashlib.sha1(key.encode()).hexdigest()}.{extension or 'iso'}"


def _matches(path: Path, checksum: str) -> bool:
    from factory.media.cache import verify

    try:
        verify(path, checksum)
    except FactoryError:
        return False
    return True


def _place(found: Path, target: Path) -> Path:
    """Store the fetched file at target atomically: a hard link to the cached copy where possible, else a copy."""
    if target.exists() and target.samefile(found):
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as tmp:
            try:
                tmp.unlink()
                os.link(found, tmp)
            except OSError:
                shutil.copyfile(found, tmp)
    except OSError as exc:
        raise FactoryError(f"iso_target_path: cannot store the ISO at {target}: {exc.strerror or exc}",
                           hint="choose a writable iso_target_path") from exc
    return target


class CreateDisk(Step[BuildContext]):
    name, title = "disk", "Creating the disk"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        s = ctx.s
        return {"disk_image": s.disk_image, "use_backing_file": s.uses_backing_file, "size": s.disk_size,
                "format": s.format.value, "skip_resize": s.skip_resize_disk, "additional": list(s.disk_additional_size),
                "qemu_img_args": [list(s.qemu_img_args.create), list(s.qemu_img_args.convert),
                                  list(s.qemu_img_args.resize)]}

    def run(self, ctx: BuildContext) -> None:
        from factory.steps.checkpoint import active

        assert ctx.driver is not None and ctx.staging is not None
        s = ctx.s
        disk = ctx.staging / f"{ctx.vm_name}.work"
        cps = active(ctx)
        if cps is None:
            self._make(ctx, disk)
        else:
            disk = cps.working_disk(ctx, f".{s.format.value}")
            # The made disk is checkpoint layer 0 in the store; the build writes an overlay on top of it.
            base = ctx.media_url or ctx.media
            requires = (str(base.resolve()),) if s.disk_image and s.uses_backing_file and isinstance(base, Path) \
                else ()
            layer = cps.base_disk(ctx, f"disk.{s.format.value}", lambda path: self._make(ctx, path), requires)
            ctx.driver.overlay_disk(layer, disk)
        ctx.disk = disk
        for n, size in enumerate(s.disk_additional_size, start=1):
            extra = ctx.staging / f"{ctx.vm_name}-{n}"  # Packer's names for disk_additional_size
            ctx.driver.create_disk(extra, size, s.format, s.qemu_img_args)
            ctx.extra_disks.append(extra)

    @staticmethod
    def _make(ctx: BuildContext, disk: Path) -> None:
        assert ctx.driver is not None
        s = ctx.s
        args = s.qemu_img_args
        if s.disk_image:
            base = ctx.media_url or ctx.media
            assert base is not None
            if s.uses_backing_file:
                ctx.driver.overlay_disk(base, disk, args)
            else:
                ctx.driver.copy_disk(base, disk, s.format, None if s.skip_resize_disk else s.disk_size, args)
        else:
            ctx.driver.create_disk(disk, s.disk_size, s.format, args)


class Firmware(Step[BuildContext]):
    name, title = "firmware", "Preparing UEFI firmware"

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.s.efi

    def inputs(self, ctx: BuildContext) -> Mapping[str, Any]:
        """The firmware by content: an OVMF update is a different machine."""
        from factory.machine.firmware import find_uefi

        code, vars_ = ctx.path(ctx.s.efi_firmware_code), ctx.path(ctx.s.efi_firmware_vars)
        if not (code and vars_):
            with contextlib.suppress(FactoryError):
                found = find_uefi()
                code, vars_ = code or found.code, vars_ or found.vars_template
        return {"code": code, "vars": vars_}

    def run(self, ctx: BuildContext) -> None:
        from factory.machine.firmware import UefiFirmware, find_uefi

        if not ctx.s.efi:
            return
        assert ctx.staging is not None
        code, vars_ = ctx.path(ctx.s.efi_firmware_code), ctx.path(ctx.s.efi_firmware_vars)
        if code and vars_:
            fw = UefiFirmware(code, vars_)
        else:
            found = find_uefi()
            fw = UefiFirmware(code or found.code, vars_ or found.vars_template)
        ctx.efi_code = fw.code
        ctx.efi_vars = fw.writable_vars(ctx.staging, "efivars.fd")


class SshKey(Step[BuildContext]):
    name, title = "ssh-key", "Preparing SSH credentials"

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.comm_options.communicator == "ssh"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        c = ctx.comm_options  # every buildable source has them (vbox sources too)
        return {"type": c.temporary_key_pair_type, "bits": c.temporary_key_pair_bits}

    def run(self, ctx: BuildContext) -> None:
        s = ctx.comm_options
        if s.communicator != "ssh":
            return
        if s.ssh_password:
            from factory import secrets

            secrets.register(s.ssh_password)
        if not s.ssh_password and not s.ssh_private_key_file and not s.ssh_agent_auth:
            from factory.comm.keys import KeyPair
            from factory.steps.checkpoint import active

            def generate() -> KeyPair:
                return KeyPair.generate(comment=f"factory-{ctx.vm_name}", kind=s.temporary_key_pair_type,
                                        bits=s.temporary_key_pair_bits)

            cps = active(ctx)
            ctx.keypair = generate() if cps is None else cps.key_pair(ctx, generate)
            ctx.say(f"{'generated' if cps is None else 'using'} an ephemeral {ctx.keypair.kind} key pair for this "
                    "build" + ("" if cps is None else " (kept with its checkpoints)"))
            if ctx.debug:
                assert ctx.workdir is not None
                key = ctx.keypair.write_private(ctx.output_directory.parent / f"{ctx.vm_name}.debug-key")
                ctx.say(f"-debug: private key written to {key}")


class Seed(Step[BuildContext]):
    name, title = "seed", "Making the CD (cd_files / cd_content)"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"cd_files": list(ctx.s.cd_files), "cd_content": ctx.s.cd_content, "cd_label": ctx.s.cd_label}

    def inputs(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"files": collect_files(ctx.root, tuple(ctx.s.cd_files), ctx.s.cd_content, ctx.template_values),
                "public_key": ctx.keypair.public_openssh if ctx.keypair is not None else None}

    def run(self, ctx: BuildContext) -> None:
        from factory.media.seed import make_iso, make_iso_stored

        s = ctx.s
        assert ctx.workdir is not None
        files = collect_files(ctx.root, tuple(s.cd_files), s.cd_content, ctx.template_values)
        label = s.cd_label or ("cidata" if s.disk_image else "")
        public_key = ctx.keypair.public_openssh if ctx.keypair is not None else None
        if not files and public_key is None:
            return  # nothing to give the guest: a seed of meta-data only would just cost a device and a probe
        if label.lower() == "cidata" or (not files and s.disk_image and public_key):
            # A cloud image only gets a user through cloud-init: make (or complete) the NoCloud seed.
            files = nocloud_seed(files, username=ctx.ssh_username, public_key=public_key, instance_id=ctx.vm_name)
            label = "cidata"
        if not files:
            return
        # A seed holding this build's ephemeral key can never be used again: only the others go to the store.
        make = make_iso_stored if ctx.keypair is None else make_iso
        ctx.seed = make(files, ctx.workdir / "cd.iso", label=label or "cdrom")
        ctx.say(f"CD {label!r} with {len(files)} file(s): " + ", ".join(sorted(files)))


class Http(Step[BuildContext]):
    name, title = "http", "Starting the HTTP server"

    def applies(self, ctx: BuildContext) -> bool:
        return bool(ctx.http_options.http_directory or ctx.http_options.http_content or ctx.unattended_files)

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        # The folder by content (inputs), not by where it is: a copy of the project elsewhere is the same build.
        s = ctx.http_options
        return {"http_content": s.http_content, "protocol": s.http_network_protocol}

    def inputs(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"http_directory": ctx.path(ctx.http_options.http_directory), "unattended": ctx.unattended_files}

    def run(self, ctx: BuildContext) -> None:
        s, directory = ctx.http_options, ctx.path(ctx.http_options.http_directory)
        if not directory and not s.http_content and not ctx.unattended_files:
            return
        if directory and not directory.is_dir():
            raise FactoryError(f"http_directory {directory} is not a directory")
        content = None
        if s.http_content or ctx.unattended_files:
            values = ctx.template_values
            content = {k: expand(v, values, where=f"http_content[{k!r}]").encode() for k, v in s.http_content.items()}
            content.update({"/" + k.lstrip("/"): v for k, v in ctx.unattended_files.items()})
        ctx.http = HttpServer(directory=directory, content=content, port_min=s.http_port_min,
                              port_max=s.http_port_max, bind=s.http_bind_address, protocol=s.http_network_protocol,
                              emit=lambda line: ctx.output("http", line),
                              reach=ctx.driver.host_address if ctx.driver is not None else None)
        ctx.cleanups.push("stop HTTP server", ctx.http.stop)
        ctx.say(f"HTTP server on port {ctx.http.port} (guest: http://{ctx.http.guest_host}:{ctx.http.port}/)")
        from factory.steps.unattended import finish_direct_boot

        finish_direct_boot(ctx)


class HostPort(Step[BuildContext]):
    """Only when the port must be named before the VM starts (`{{ .SSHHostPort }}` in qemuargs, or in an
    installer's boot keys): then the driver reserves it ahead, as Packer does. Otherwise vm.Boot asks the
    running machine for its SSH address (QEMU binds the forward itself then)."""

    name, title = "ssh-port", "Reserving the SSH host port"

    def applies(self, ctx: BuildContext) -> bool:
        return port_named_before_start(ctx)

    def run(self, ctx: BuildContext) -> None:
        assert ctx.driver is not None
        ctx.ssh_lease = ctx.driver.reserve_port(PortRange(ctx.s.host_port_min, ctx.s.host_port_max),
                                                purpose="SSH port forwarding")
        ctx.cleanups.push(f"release port {ctx.ssh_lease.port}", ctx.ssh_lease.release)
        ctx.say(f"SSH will be forwarded from {ctx.driver.forward_host}:{ctx.ssh_lease.port}")


def port_named_before_start(ctx: BuildContext) -> bool:
    """Whether the template uses the SSH host port before the VM runs (so the VM cannot bind it first)."""
    s = ctx.s
    if s.communicator != "ssh" or s.skip_nat_mapping:
        return False
    early = [a for group in s.qemuargs for a in group]
    if not s.disk_image:  # an installer's keys are typed before the run phase's forward exists
        early += [*s.boot_command, *(step.keys for step in s.boot_steps)]
    return any("SSHHostPort" in text for text in early)
