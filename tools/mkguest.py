#!/usr/bin/env python3
"""Build a Debian 12 guest disk that behaves like a vendor cloud image, without loop devices or mounts.

    python tools/mkguest.py --output DIR [--cache] [--cache-dir DIR]

Writes DIR/debian-12-guest.qcow2 (3 GiB virtual, plain qcow2: compression would slow every boot) and prints
its path. The recipe:

- `debootstrap` bookworm (minbase + systemd, openssh-server, cloud-init, sudo, linux-image-cloud-amd64).
- No users, passwords or keys: a cidata seed (or /var/lib/cloud/seed/nocloud) provides them, as on a vendor
  image. cloud-init's datasources are NoCloud then None, so it never waits for a metadata service.
- Networking: systemd-networkd with one match-all DHCP file for every Ethernet NIC (works under QEMU user-mode
  networking whatever the kernel names the NIC); cloud-init's own network rendering is disabled, so a seed's
  network-config is ignored.
- SSH host keys are removed at build time and created on first boot (cloud-init makes an ed25519 key; a
  drop-in makes one before sshd starts if cloud-init did not), so clones never share host keys;
  /etc/machine-id is emptied for the same reason.
- Boot: UEFI only. A GPT disk: an ESP (FAT32, made with mkfs.vfat -C and filled with mtools) holding
  systemd-boot as EFI/BOOT/BOOTX64.EFI, a loader entry and the kernel+initrd; the root partition is ext4 made
  with `mkfs.ext4 -d` and mounted by PARTUUID. The serial console is ttyS0 (console=ttyS0 on the cmdline).
- The cloud kernel has no AHCI/SATA driver: attach disks and seed media as virtio (virtio-blk or
  virtio-scsi), never as IDE/SATA CD-ROMs.

Built images are cached under the cache dir keyed by a hash of this file (the recipe), behind a file lock so
two test workers never build it twice, and moved into place atomically. The kernel, initrd and the few
modules the test installer needs (virtio, CD-ROM, iso9660) are kept beside the image in the cache entry.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

if __package__ in (None, ""):  # run as a script from a checkout: make `factory` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from factory.errors import FactoryError
from factory.fsutil import atomic_dir, atomic_path, file_lock
from factory.run import run

IMAGE_NAME = "debian-12-guest.qcow2"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = (
    "systemd", "systemd-sysv", "systemd-resolved", "udev", "dbus", "openssh-server", "cloud-init",
    # debootstrap does not resolve virtual packages: python3-cryptography needs the cffi backend by name.
    "python3-cffi-backend",
    "cloud-guest-utils", "fdisk", "linux-image-cloud-amd64", "initramfs-tools", "zstd", "sudo",
    "ca-certificates", "netbase", "iproute2", "e2fsprogs", "ifupdown-",
)
DISK_MIB = 3072
ESP_MIB = 128
SECTOR = 512
# no_timer_check: on a loaded TCG host the IO-APIC timer check can fail and panic the boot (cloud images skip it).
KERNEL_CMDLINE = "ro console=tty0 console=ttyS0,115200n8 net.ifnames=0 no_timer_check"
# Modules (and what they depend on) the test installer's initrd loads: CD over virtio-scsi, disk over virtio-blk.
# (The CD-ROM may also sit on i440fx's PIIX IDE; q35's AHCI has no driver in the cloud kernel.)
INSTALLER_MODULES = ("virtio_pci", "virtio_blk", "virtio_scsi", "ata_piix", "sr_mod", "isofs", "ext4")
# Units that only cost boot time in a short-lived build VM.
MASKED_UNITS = ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service",
                "fstrim.timer", "man-db.timer", "dpkg-db-backup.timer")

# cloud-init's module lists without what cannot apply here (snap, lxd, puppet, chef, landscape, grub-dpkg,
# byobu, locale (no locales package: it would fail and mark the boot degraded), ...): each module costs time
# under emulation and delays `systemctl is-system-running`. Every key is valid cloud-config (cloud-init checks
# the merged config at boot and warns on the console otherwise).
CLOUD_MODULES = """\
cloud_config_modules: [set-passwords, apt-configure, timezone, runcmd]
cloud_final_modules: [package-update-upgrade-install, write-files-deferred, scripts-vendor, scripts-per-once,
  scripts-per-boot, scripts-per-instance, scripts-user, final-message, power-state-change]
"""

Log = Callable[[str], None]


@dataclass(frozen=True)
class Layout:
    """Where the partitions live on the disk, in 512-byte sectors."""

    esp_start: int
    esp_sectors: int
    root_start: int
    root_sectors: int
    total_sectors: int
    disk_guid: str
    esp_guid: str
    root_guid: str
    root_fs_uuid: str
    esp_volume_id: str

    @classmethod
    def for_recipe(cls, digest: str) -> Layout:
        """Fixed sizes; identifiers derived from the recipe digest so a rebuild is byte-stable where it can be."""
        mib = 1024 * 1024 // SECTOR
        total = DISK_MIB * mib
        esp_start, esp_sectors = mib, ESP_MIB * mib
        root_start = esp_start + esp_sectors
        last_usable = total - 34  # the backup GPT takes the last 33 sectors
        root_sectors = ((last_usable - root_start + 1) // mib) * mib

        def ident(tag: str) -> str:
            return str(uuid.UUID(hashlib.sha256(f"{digest}:{tag}".encode()).hexdigest()[:32], version=4))

        return cls(esp_start, esp_sectors, root_start, root_sectors, total, ident("disk"), ident("esp"),
                   ident("root"), ident("rootfs"), hashlib.sha256(f"{digest}:vfat".encode()).hexdigest()[:8])


@dataclass(frozen=True)
class GuestBuild:
    """A built guest: the qcow2 plus the boot files kept beside it (for direct-kernel boots and the installer)."""

    directory: Path
    digest: str

    @property
    def image(self) -> Path:
        return self.directory / IMAGE_NAME

    @property
    def kernel(self) -> Path:
        return self.directory / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.directory / "initrd.img"

    @property
    def modules(self) -> Path:
        """Installer modules in load order (modules/order lists the file names)."""
        return self.directory / "modules"

    @property
    def cmdline(self) -> str:
        return (self.directory / "cmdline").read_text().strip()


CLI_MARKER = b"\n# --- command line (not part of the recipe) ---\n"


def recipe_digest() -> str:
    """Hash of everything that decides the image: this file up to the command-line part."""
    return hashlib.sha256(Path(__file__).read_bytes().partition(CLI_MARKER)[0]).hexdigest()


def default_cache_dir() -> Path:
    """The test artifact cache (FACTORY_TEST_CACHE, as the test suite uses), else ~/.cache/factory-tests."""
    return Path(os.environ.get("FACTORY_TEST_CACHE", Path.home() / ".cache" / "factory-tests"))


def cached_build(cache_dir: Path | None = None, log: Log | None = None, mirror: str = MIRROR) -> GuestBuild:
    """The guest for the current recipe, built once per cache dir (file lock; atomic rename into place)."""
    cache_dir = cache_dir or default_cache_dir()
    digest = recipe_digest()
    final = cache_dir / f"debian-12-guest-{digest[:16]}"
    with file_lock(cache_dir / ".mkguest.lock"):
        if not (final / IMAGE_NAME).exists():
            with atomic_dir(final) as tmp:
                build(tmp, cache_dir=cache_dir, log=log, mirror=mirror)
                tmp.chmod(0o755)  # mkdtemp made it private; the cache is shared by every test user
    return GuestBuild(final, digest)


def build(outdir: Path, *, cache_dir: Path | None = None, log: Log | None = None, mirror: str = MIRROR) -> GuestBuild:
    """Build the guest into outdir (image, kernel, initrd, installer modules). Needs root for debootstrap.

    `mirror` only says where the packages come from (a local mirror for air-gapped sites): apt verifies them
    against the suite's signed Release file, so the image does not depend on it."""
    say = log or (lambda msg: print(f"mkguest: {msg}", file=sys.stderr, flush=True))
    digest = recipe_digest()
    layout = Layout.for_recipe(digest)
    outdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mkguest-", dir=os.environ.get("TMPDIR")) as tmp:
        work = Path(tmp)
        root = work / "root"
        start = time.monotonic()
        say(f"debootstrap {SUITE} from {mirror} (about 1-4 minutes; progress every 15 s)")
        try:
            debootstrap(root, (cache_dir or default_cache_dir()) / "debs", mirror, DebootstrapProgress(say))
        finally:
            unmount_under(root)  # an interrupted debootstrap leaves /proc mounted inside the temp dir
        say(f"debootstrap done in {time.monotonic() - start:.0f}s; configuring")
        configure(root, layout)
        kernel, initrd = boot_files(root)
        copy_installer_modules(root, outdir / "modules")
        shutil.copyfile(kernel, outdir / "vmlinuz")
        shutil.copyfile(initrd, outdir / "initrd.img")
        (outdir / "cmdline").write_text(f"root=PARTUUID={layout.root_guid} {KERNEL_CMDLINE}\n")
        slim(root)
        say("assembling the GPT disk (ESP + ext4 root)")
        raw = work / "disk.raw"
        assemble(root, raw, layout, kernel, initrd, work)
        run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, outdir / IMAGE_NAME])
        say(f"built the guest image in {time.monotonic() - start:.0f}s")
    return GuestBuild(outdir, digest)


def debootstrap(root: Path, debs: Path, mirror: str, on_line: Callable[[str], None]) -> None:
    """Unpack the base system; .debs are kept in a cache shared by all recipes (apt verifies them)."""
    debs.mkdir(parents=True, exist_ok=True)
    include = ",".join(p for p in PACKAGES if not p.endswith("-"))
    exclude = ",".join(p[:-1] for p in PACKAGES if p.endswith("-"))
    run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}", f"--include={include}",
         f"--exclude={exclude}", SUITE, root, mirror], timeout=1800, on_line=on_line)


class DebootstrapProgress:
    """Turns debootstrap's `I: Retrieving foo`-style lines into a progress line per phase and every 15 s."""

    PHASES: ClassVar[dict[str, str]] = {
        "Retrieving": "downloading", "Validating": "verifying", "Extracting": "extracting",
        "Unpacking": "unpacking", "Configuring": "configuring", "Installing": "installing"}

    def __init__(self, say: Log, every: float = 15.0) -> None:
        self.say, self.every = say, every
        self.start = self.last = time.monotonic()
        self.phase, self.count = "", 0

    def __call__(self, line: str) -> None:
        if line.startswith(("E: ", "W: ")):
            self.say(f"debootstrap: {line}")
            return
        verb = line[3:].split(" ", 1)[0] if line.startswith("I: ") else ""
        phase = self.PHASES.get(verb)
        if phase is None:
            return
        now = time.monotonic()
        if phase != self.phase:
            if self.phase:
                self.say(f"debootstrap: {self.phase} done ({self.count} packages, {now - self.start:.0f}s)")
            self.phase, self.count, self.last = phase, 1, now
            self.say(f"debootstrap: {phase} packages")
            return
        self.count += 1
        if now - self.last >= self.every:
            self.last = now
            self.say(f"debootstrap: {phase}, {self.count} packages so far ({now - self.start:.0f}s)")


def unmount_under(root: Path) -> None:
    """Unmount whatever is mounted below root (deepest first) so removing the temp dir never enters /proc."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts") as fh:
        points = [line.split()[1] for line in fh if line.split()[1].startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        run(["umount", "--lazy", point], check=False)


def write(root: Path, rel: str, text: str, mode: int = 0o644) -> None:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        path.unlink()
    path.write_text(text)
    path.chmod(mode)


def configure(root: Path, layout: Layout) -> None:
    """Turn the bootstrap into a cloud-image-like guest (all offline: files and `systemctl --root`)."""
    write(root, "/etc/fstab", f"PARTUUID={layout.root_guid} / ext4 defaults,errors=remount-ro 0 1\n"
          f"PARTUUID={layout.esp_guid} /boot/efi vfat umask=0077,nofail 0 2\n")
    (root / "boot/efi").mkdir(parents=True, exist_ok=True)
    write(root, "/etc/hostname", "debian\n")
    write(root, "/etc/hosts", "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    write(root, "/etc/systemd/network/80-dhcp.network",
          "# factory test guest: DHCP on every Ethernet NIC, whatever its name\n"
          "[Match]\nType=ether\n\n[Network]\nDHCP=yes\n\n[DHCPv4]\nUseDomains=yes\n")
    # One NIC under user-mode networking: being online means any link is up; never wait two minutes.
    write(root, "/etc/systemd/system/systemd-networkd-wait-online.service.d/any.conf",
          "[Service]\nExecStart=\nExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=30\n")
    write(root, "/etc/cloud/cloud.cfg.d/90-factory.cfg",
          "# factory test guest: a local seed (cidata media or seed dir) only; no metadata service probing.\n"
          "datasource_list: [NoCloud, None]\n"
          "network: {config: disabled}\n"
          "# one host key type: RSA/DSA key generation costs seconds under emulation\n"
          "ssh_genkeytypes: [ed25519]\n" + CLOUD_MODULES)
    # Host keys are made on first boot by cloud-init; this is the fallback if its ssh module did not run.
    write(root, "/etc/systemd/system/ssh.service.d/hostkeys.conf",
          "[Service]\nExecStartPre=/bin/sh -c 'test -e /etc/ssh/ssh_host_ed25519_key || "
          "ssh-keygen -q -t ed25519 -N \"\" -f /etc/ssh/ssh_host_ed25519_key'\n")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    write(root, "/etc/machine-id", "")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    write(root, "/etc/dpkg/dpkg.cfg.d/01-nodoc",
          "path-exclude=/usr/share/doc/*\npath-include=/usr/share/doc/*/copyright\n"
          "path-exclude=/usr/share/man/*\npath-exclude=/usr/share/info/*\npath-exclude=/usr/share/locale/*\n"
          "path-include=/usr/share/locale/locale.alias\n")
    systemctl = ["systemctl", f"--root={root}"]
    run([*systemctl, "enable", "systemd-networkd.service", "systemd-resolved.service", "ssh.service",
         "serial-getty@ttyS0.service"])
    run([*systemctl, "mask", *MASKED_UNITS])


def boot_files(root: Path) -> tuple[Path, Path]:
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if not kernels:
        raise FactoryError("debootstrap installed no kernel under /boot", hint="check the PACKAGES list")
    version = kernels[-1].name.removeprefix("vmlinuz-")
    return kernels[-1], root / "boot" / f"initrd.img-{version}"


def copy_installer_modules(root: Path, dest: Path) -> None:
    """Copy INSTALLER_MODULES and their dependencies (from modules.dep) in load order, for the test installer."""
    moddir = next((root / "lib/modules").iterdir())
    deps: dict[str, list[str]] = {}
    for line in (moddir / "modules.dep").read_text().splitlines():
        name, _, rest = line.partition(":")
        deps[Path(name).name.split(".ko")[0].replace("-", "_")] = [name, *rest.split()]
    by_file = {entry[0]: key for key, entry in deps.items()}
    order: list[str] = []

    def visit(mod: str) -> None:
        if mod not in deps or deps[mod][0] in order:
            return  # built into the kernel, or already queued
        for dep in reversed(deps[mod][1:]):
            visit(by_file[dep])
        order.append(deps[mod][0])

    for mod in INSTALLER_MODULES:
        visit(mod)
    dest.mkdir(parents=True, exist_ok=True)
    for rel in order:
        shutil.copyfile(moddir / rel, dest / Path(rel).name)
    (dest / "order").write_text("".join(Path(rel).name + "\n" for rel in order))


def slim(root: Path) -> None:
    """Drop what a build VM never reads: package lists and caches, docs, man pages, translations."""
    for rel in ("var/cache/apt", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info",
                "usr/share/locale", "var/log", "tmp"):
        path = root / rel
        if path.is_dir():
            shutil.rmtree(path)
            path.mkdir(mode=0o1777 if rel == "tmp" else 0o755)
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)


def assemble(root: Path, raw: Path, layout: Layout, kernel: Path, initrd: Path, work: Path) -> None:
    """GPT + ESP image + ext4 image, written at their offsets into a sparse raw disk."""
    esp = work / "esp.img"
    make_esp(esp, layout, kernel, initrd, work)
    rootfs = work / "root.img"
    with open(rootfs, "wb") as fh:
        fh.truncate(layout.root_sectors * SECTOR)
    run(["mkfs.ext4", "-q", "-F", "-L", "root", "-U", layout.root_fs_uuid, "-E", "root_owner=0:0",
         "-d", root, rootfs])
    with open(raw, "wb") as fh:
        fh.truncate(layout.total_sectors * SECTOR)
    esp_end = layout.esp_start + layout.esp_sectors - 1
    root_end = layout.root_start + layout.root_sectors - 1
    run(["sgdisk", "--clear", f"--disk-guid={layout.disk_guid}",
         f"--new=1:{layout.esp_start}:{esp_end}", "--typecode=1:ef00", "--change-name=1:ESP",
         f"--partition-guid=1:{layout.esp_guid}",
         f"--new=2:{layout.root_start}:{root_end}", "--typecode=2:8304", "--change-name=2:root",
         f"--partition-guid=2:{layout.root_guid}", raw])
    place(esp, raw, layout.esp_start * SECTOR)
    place(rootfs, raw, layout.root_start * SECTOR)


def make_esp(esp: Path, layout: Layout, kernel: Path, initrd: Path, work: Path) -> None:
    run(["mkfs.vfat", "-C", "-F", "32", "-n", "ESP", "-i", layout.esp_volume_id, esp,
         str(layout.esp_sectors * SECTOR // 1024)])
    loader = work / "loader.conf"
    loader.write_text("default debian.conf\ntimeout 0\nconsole-mode keep\neditor no\n")
    entry = work / "debian.conf"
    entry.write_text(f"title Debian 12 (factory test guest)\nlinux /vmlinuz\ninitrd /initrd.img\n"
                     f"options root=PARTUUID={layout.root_guid} {KERNEL_CMDLINE}\n")
    mtools = {"MTOOLS_SKIP_CHECK": "1"}
    run(["mmd", "-i", esp, "::/EFI", "::/EFI/BOOT", "::/loader", "::/loader/entries"], env=mtools)
    copies: list[tuple[Path, str]] = [
              (Path("/usr/lib/systemd/boot/efi/systemd-bootx64.efi"), "::/EFI/BOOT/BOOTX64.EFI"),
              (loader, "::/loader/loader.conf"), (entry, "::/loader/entries/debian.conf"),
              (kernel, "::/vmlinuz"), (initrd, "::/initrd.img")]
    for src, dst in copies:
        run(["mcopy", "-i", esp, src, dst], env=mtools)


def place(image: Path, disk: Path, offset: int, chunk: int = 1 << 20) -> None:
    """Copy image into disk at offset, skipping all-zero chunks so the disk stays sparse (no loop devices)."""
    zero = bytes(chunk)
    with open(image, "rb") as src, open(disk, "r+b") as dst:
        pos = 0
        while block := src.read(chunk):
            if block != zero[: len(block)]:
                dst.seek(offset + pos)
                dst.write(block)
            pos += len(block)


# --- command line (not part of the recipe) ---
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help=f"directory to write {IMAGE_NAME} into")
    parser.add_argument("--cache", action="store_true", help="reuse (or fill) the cache keyed by the recipe hash")
    parser.add_argument("--cache-dir", type=Path, default=None, help="cache location (default: the test cache)")
    parser.add_argument("--mirror", default=os.environ.get("FACTORY_DEBIAN_MIRROR", MIRROR),
                        help="Debian mirror debootstrap fetches from: a local one for air-gapped sites, e.g. "
                        "http://mirror.lan/debian or file:///srv/debian (default: $FACTORY_DEBIAN_MIRROR or "
                        f"{MIRROR})")
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: the running command is killed, mounts and temp dirs are cleaned up.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cache_dir = args.cache_dir or default_cache_dir()
    cached = (cache_dir / f"debian-12-guest-{recipe_digest()[:16]}" / IMAGE_NAME).exists()
    if os.geteuid() != 0 and not (args.cache and cached):
        print("mkguest: debootstrap needs root; run as root (or with sudo)", file=sys.stderr)
        return 2
    out = args.output / IMAGE_NAME
    try:
        with atomic_path(out) as tmp_out:
            if args.cache:
                run(["cp", "--reflink=auto", "--sparse=always", cached_build(cache_dir, mirror=args.mirror).image,
                     tmp_out])
            else:
                with tempfile.TemporaryDirectory(prefix=".mkguest-", dir=args.output) as tmp:
                    os.replace(build(Path(tmp), cache_dir=cache_dir, mirror=args.mirror).image, tmp_out)
            tmp_out.chmod(0o644)
    except FactoryError as exc:
        print(f"mkguest: {exc.render()}", file=sys.stderr)
        return 1
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
