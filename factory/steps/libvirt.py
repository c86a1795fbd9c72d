"""The steps of a `source "libvirt"` build: the qemu build's shape (seed, SSH over a 127.0.0.1 forward,
provisioners, shutdown, artifact, manifest) on a libvirt host reached through its URI.

    open      connect; refuse a taken domain or volume name, a missing pool or volume before anything is made
    scratch   local scratch directory, and the staging directory when output_directory is set
    accel     kvm only when factory's probe finds KVM working and the host offers it; else qemu (TCG)
    ssh-key, http                         as for qemu (factory/steps/prepare.py)
    volumes   each `volume { }` made as its source says, uploaded by stream; the domain plan
    ssh-port  the loopback port of the user-mode NIC's forward (named in the domain's definition)
    boot      define and start the domain (driver.machine), type boot_command, find SSH
    connect, provision, clear-keys, shutdown                as for qemu (factory/steps/vm.py, finish.py)
    artifact  keep the artifact volume in its pool; download it by stream and compact it into output_directory
    post-processors                                          as for qemu

The driver's cleanup (pushed first, so it runs last) undefines the domain and deletes every volume factory made
except a published artifact, whatever ended the build.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import libvirt

from factory.artifact.model import Artifact, DiskFormat, Firmware, Hardware
from factory.build import EventKind, Step
from factory.errors import FactoryError
from factory.machine import libvirt as lv
from factory.machine import libvirt_volumes as volumes
from factory.machine.accel import TCG_TIMEOUT_FACTOR
from factory.machine.driver import MachineSpec, PortRange
from factory.machine.libvirt_driver import LibvirtDriver
from factory.machine.libvirt_xml import DomainPlan, domain_plan
from factory.schema.libvirt import Volume, VolumeSource, volume_bytes
from factory.steps import comm, finish, prepare, vm
from factory.steps.context import BuildContext
from factory.steps.seed import nocloud_seed


def steps(ctx: BuildContext) -> list[Step[BuildContext]]:
    return [Open(), Scratch(), Accelerator(), prepare.SshKey(), prepare.Http(), Volumes(), SshPort(), Boot(),
            vm.Connect(), *finish.provision_steps(ctx), comm.ClearAuthorizedKeys(), vm.Shutdown(), ArtifactVolume(),
            finish.PostProcess()]


def _driver(ctx: BuildContext) -> LibvirtDriver:
    if not isinstance(ctx.driver, LibvirtDriver):
        raise TypeError("a libvirt source runs on the libvirt driver")
    return ctx.driver


def volume_names(ctx: BuildContext) -> list[str]:
    """Each volume's name: its own, else the plugin's `<domain>-<alias>` (`<domain>-<index>` without alias)."""
    return [v.name or f"{ctx.vm_name}-{v.alias or i}" for i, v in enumerate(ctx.lv.volumes)]


def artifact_index(ctx: BuildContext) -> int:
    vols = ctx.lv.volumes
    if len(vols) == 1:
        return 0
    return next(i for i, v in enumerate(vols) if v.alias == ctx.lv.artifact_volume_alias)


@contextmanager
def libvirt_errors(ctx: BuildContext) -> Iterator[None]:
    """A libvirt call that fails as one clear message (never a traceback), naming the host."""
    try:
        yield
    except libvirt.libvirtError as exc:
        uri = ctx.lv.libvirt_uri
        lost = not _alive(ctx)
        raise FactoryError(f"libvirt at {uri}: {exc.get_error_message()}",
                           hint=LOST_HINT.format(uri=uri) if lost else "see libvirtd's log on the host") from None


def _alive(ctx: BuildContext) -> bool:
    conn = _driver(ctx).conn
    try:
        return conn is None or bool(conn.isAlive())
    except libvirt.libvirtError:
        return False


LOST_HINT = ("the connection to libvirtd was lost (did it stop?): restart it, then `factory clean --libvirt {uri}` "
             "removes the domain and volumes this build left")


def _pool(ctx: BuildContext, name: str) -> libvirt.virStoragePool:
    return lv.pool(_driver(ctx).connection, name)


class Open(Step[BuildContext]):
    """Connect, and check everything the host must (or must not) hold before anything is created there."""

    name, title = "open", "Connecting to libvirt"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"libvirt_uri": ctx.lv.libvirt_uri}

    def run(self, ctx: BuildContext) -> None:
        with libvirt_errors(ctx):
            self._run(ctx)

    def _run(self, ctx: BuildContext) -> None:
        driver = _driver(ctx)
        conn = driver.open(ctx.lv.libvirt_uri)
        try:
            conn.lookupByName(ctx.vm_name)
        except libvirt.libvirtError:
            pass
        else:
            raise FactoryError(f"a libvirt domain named {ctx.vm_name!r} already exists on {ctx.lv.libvirt_uri}; "
                               "factory never replaces a domain it did not create",
                               hint="remove it, set another domain_name, or `factory clean --libvirt URI` if it "
                               "is a leftover of a killed factory run")
        for vol, name in zip(ctx.lv.volumes, volume_names(ctx), strict=True):
            store = _pool(ctx, vol.pool)
            if vol.source is None:
                volumes.lookup(store, name)
            else:
                volumes.refuse_existing(store, name)
            src = vol.source
            if src is not None and src.type in ("cloning", "backing-store") and src.volume:
                volumes.lookup(_pool(ctx, src.pool or vol.pool), src.volume)
        ctx.say(f"connected to {ctx.lv.libvirt_uri} (libvirt {_version(conn)})")


def _version(conn: libvirt.virConnect) -> str:
    v = conn.getLibVersion()
    return f"{v // 1000000}.{v // 1000 % 1000}.{v % 1000}"


class Scratch(Step[BuildContext]):
    """Local scratch (seed images, the downloaded artifact) and, with output_directory, its staging twin."""

    name, title = "scratch", "Preparing local directories"

    def run(self, ctx: BuildContext) -> None:
        if ctx.lv.output_directory:
            prepare.PrepareOutput().run(ctx)   # staging beside output_directory, and the scratch directory
            return
        ctx.workdir = Path(tempfile.mkdtemp(prefix=f"{ctx.vm_name}-"))
        workdir = ctx.workdir
        ctx.cleanups.push("remove scratch directory", lambda: shutil.rmtree(workdir, ignore_errors=True))


class Accelerator(Step[BuildContext]):
    name, title = "accelerator", "Choosing the domain type"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"domain_type": ctx.lv.domain_type}

    def run(self, ctx: BuildContext) -> None:
        if ctx.lv.domain_type:
            ctx.accel = ctx.lv.domain_type
            ctx.emulated = ctx.accel != "kvm"
            ctx.timeout_factor = 1.0 if ctx.accel == "kvm" else TCG_TIMEOUT_FACTOR
            ctx.say(f"domain type {ctx.accel} (domain_type)")
            return
        verdict = _driver(ctx).probe("auto")
        ctx.accel, ctx.emulated, ctx.timeout_factor = verdict.name, verdict.emulated, verdict.timeout_factor
        if verdict.fallback_notice:
            ctx.emit(EventKind.NOTICE, verdict.fallback_notice)
        else:
            ctx.say(f"domain type {verdict.name} ({verdict.reason})")


class Volumes(Step[BuildContext]):
    """Each volume made as its source says; the domain plan the driver defines machines from."""

    name, title = "volumes", "Creating the storage volumes"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"volume": ctx.lv.volume}

    def run(self, ctx: BuildContext) -> None:
        with libvirt_errors(ctx):
            self._run(ctx)

    def _run(self, ctx: BuildContext) -> None:
        driver, cfg = _driver(ctx), ctx.lv
        names = volume_names(ctx)
        created = []
        for vol, name in zip(cfg.volumes, names, strict=True):
            if vol.source is None:
                ctx.say(f"volume {vol.pool}/{name}: attached as it is")
                continue
            _make(ctx, vol, vol.source, name)
            created.append((vol.pool, name))
            ctx.say(f"volume {vol.pool}/{name}: made from its {vol.source.type} source")
        domain_type = "kvm" if ctx.accel == "kvm" else "qemu"

        def plan_for(spec: MachineSpec) -> DomainPlan:
            return domain_plan(cfg, name=spec.name, build_id=ctx.run_uuid, source=f"{ctx.source_type}."
                               f"{ctx.source_name}", domain_type=domain_type, volume_names=tuple(names),
                               ssh_host_port=spec.ssh_host_port, serial_log=None, created=tuple(created))

        driver.plan_for = plan_for


def _make(ctx: BuildContext, vol: Volume, src: VolumeSource, name: str) -> None:
    driver = _driver(ctx)
    store = _pool(ctx, vol.pool)
    capacity = volume_bytes(vol.capacity) if vol.capacity else None
    if src.type in ("external", "http"):
        local = _in_format(ctx, _fetch(ctx, src), vol.format or "qcow2", name)
        volumes.from_file(driver, store, name, local, capacity=capacity)
    elif src.type == "cloud-init":
        volumes.from_file(driver, store, name, _cloud_init(ctx, src, name))
    elif src.type == "files":
        volumes.from_file(driver, store, name, _files_iso(ctx, src, name))
    elif src.type == "backing-store" and src.path:
        volumes.backing_path(driver, store, name, src.path, capacity=capacity)
    else:
        assert src.volume is not None   # the schema requires it for cloning and backing-store
        base = volumes.lookup(_pool(ctx, src.pool or vol.pool), src.volume)
        if src.type == "cloning":
            volumes.clone(driver, store, name, base, capacity=capacity, fmt=vol.format)
        else:
            volumes.backing_store(driver, store, name, base, capacity=capacity)


def _fetch(ctx: BuildContext, src: VolumeSource) -> Path:
    """The source image, fetched through factory's cache (local paths and file:// are read in place)."""
    from factory.media.cache import fetch

    urls = [str(ctx.root / u) if "://" not in u and not Path(u).is_absolute() else u for u in src.download_urls]
    return fetch(urls, src.checksum or "none")


def _in_format(ctx: BuildContext, image: Path, fmt: str, name: str) -> Path:
    """The image as the volume's format says (the domain's disk driver reads it as that): as it is when it
    already is, else converted locally first (a raw image for a qcow2 volume, say)."""
    import json

    from factory.run import run

    info = json.loads(run(["qemu-img", "info", "--output=json", "-U", image]).stdout)
    if info.get("format") == fmt:
        return image
    assert ctx.workdir is not None and ctx.driver is not None
    try:
        wanted = DiskFormat(fmt)
    except ValueError:
        raise FactoryError(f"volume {name!r}: format {fmt!r} is not one factory can convert to",
                           hint="use qcow2 or raw, or give an image already in that format") from None
    converted = ctx.workdir / f"{name}.{fmt}"
    ctx.say(f"volume {name}: converting the {info.get('format')} image to {fmt}")
    ctx.driver.copy_disk(image, converted, wanted, None)
    return converted


def _cloud_init(ctx: BuildContext, src: VolumeSource, name: str) -> Path:
    """A NoCloud seed of user_data / meta_data / network_config, with the build's SSH key added for its user."""
    from factory.media.seed import make_iso

    assert ctx.workdir is not None
    files: dict[str, bytes | Path] = {}
    for key, text in (("user-data", src.user_data), ("meta-data", src.meta_data),
                      ("network-config", src.network_config)):
        if text is not None:
            files[key] = text.encode()
    public_key = ctx.keypair.public_openssh if ctx.keypair is not None else None
    files = nocloud_seed(files, username=ctx.ssh_username, public_key=public_key, instance_id=ctx.vm_name)
    return make_iso(files, ctx.workdir / f"{name}.iso", label="cidata")


def _files_iso(ctx: BuildContext, src: VolumeSource, name: str) -> Path:
    from factory.media.seed import make_iso

    assert ctx.workdir is not None
    files: dict[str, bytes | Path] = {}
    for pattern in src.files:
        path = ctx.root / pattern
        files[path.name] = path
    files.update({k.lstrip("/"): v.encode() for k, v in src.contents.items()})
    return make_iso(files, ctx.workdir / f"{name}.iso", label=src.label or "cdrom")


class SshPort(Step[BuildContext]):
    """The host port of the user-mode NIC's SSH forward: part of the domain definition, so named before start."""

    name, title = "ssh-port", "Reserving the SSH host port"

    def applies(self, ctx: BuildContext) -> bool:
        c = ctx.comm_options
        return c.communicator == "ssh" and not c.skip_nat_mapping and any(
            n.type == "user" for n in ctx.lv.interfaces)

    def run(self, ctx: BuildContext) -> None:
        c = ctx.comm_options
        ctx.ssh_lease = lease = _driver(ctx).reserve_port(PortRange(c.host_port_min, c.host_port_max),
                                                          purpose="SSH port forwarding")
        ctx.cleanups.push(f"release port {lease.port}", lease.release)
        ctx.say(f"SSH will be forwarded from 127.0.0.1:{lease.port} (on the libvirt host)")


class Boot(Step[BuildContext]):
    name, title = "boot", "Starting the domain"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        cfg = ctx.lv
        return {"vcpu": cfg.vcpu, "memory": cfg.memory, "chipset": cfg.chipset, "loader": cfg.loader_path,
                "network_interface": cfg.network_interface, "boot_command": list(cfg.boot_command)}

    def run(self, ctx: BuildContext) -> None:
        with libvirt_errors(ctx):
            self._run(ctx)

    def _run(self, ctx: BuildContext) -> None:
        assert ctx.workdir is not None
        cfg = ctx.lv
        spec = MachineSpec(name=ctx.vm_name, workdir=ctx.workdir, serial_log=vm.serial_log_path(ctx),
                           accel=ctx.accel, cpus=cfg.vcpu, memory_mb=cfg.memory,
                           ssh_host_port=ctx.ssh_lease.port if ctx.ssh_lease is not None else None,
                           guest_ssh_port=cfg.ssh_port)
        vm.start_machine(ctx, spec, "run")
        vm.find_ssh(ctx)
        vm.type_boot_command(ctx)


class ArtifactVolume(Step[BuildContext]):
    """The artifact volume stays in its pool; with output_directory it is also downloaded by stream and written
    there compacted (qcow2), published atomically."""

    name, title = "artifact", "Keeping the artifact volume"

    def run(self, ctx: BuildContext) -> None:
        with libvirt_errors(ctx):
            self._run(ctx)

    def _run(self, ctx: BuildContext) -> None:
        driver, cfg = _driver(ctx), ctx.lv
        i = artifact_index(ctx)
        spec, name = cfg.volumes[i], volume_names(ctx)[i]
        vol = volumes.lookup(_pool(ctx, spec.pool), name)
        files: tuple[Path, ...] = ()
        disk = None
        if ctx.staging is not None:
            disk = _download(ctx, vol, name)
            files = (disk,)
        driver.keep(vol)
        ctx.say(f"artifact volume: {spec.pool}/{name} on {cfg.libvirt_uri}")
        ctx.artifact = Artifact(
            builder_id="factory.libvirt", build_name=ctx.build_name, builder_type="libvirt", files=files,
            disk=disk, disk_format=DiskFormat.QCOW2 if disk else None, artifact_id=name, vm_name=ctx.vm_name,
            hardware=Hardware(cpus=cfg.vcpu, memory_mb=cfg.memory, machine_type=cfg.chipset or "pc",
                              firmware=Firmware.EFI if cfg.loader_path else Firmware.BIOS,
                              disk_interface=spec.bus or "virtio"),
            state={"libvirt_uri": cfg.libvirt_uri, "pool": spec.pool, "volume": name, "accelerator": ctx.accel,
                   "stage_id": ctx.stage_ids.get("shutdown", "")})
        ctx.artifacts.append(ctx.artifact)
        ctx.emit(EventKind.ARTIFACT, "artifact: " + ", ".join([f"volume {spec.pool}/{name}",
                                                               *(str(f) for f in files)]))


def _download(ctx: BuildContext, vol: libvirt.virStorageVol, name: str) -> Path:
    assert ctx.workdir is not None and ctx.staging is not None and ctx.driver is not None
    raw = lv.download(vol, ctx.workdir / f"{name}.download")
    final = ctx.staging / (name if name.endswith(".qcow2") else f"{name}.qcow2")
    ctx.driver.compact_disk(raw, final, DiskFormat.QCOW2)
    raw.unlink()
    return prepare.publish_output(ctx) / final.name
