"""The VBoxManage command lines of a VirtualBox build, from its typed options: pure functions, so golden files can
hold them and a review sees exactly what VirtualBox is asked to do.

Names follow Packer's VirtualBox plugin (controllers "IDE Controller", "SATA Controller", ...; the SSH rule
"packercomm"; the cd_files DVD on IDE port 1 device 1), so templates' own `vboxmanage` commands that name them
keep working.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from factory.schema.virtualbox import VirtualBoxIsoSource

# hard_drive_interface / iso_interface -> (controller name, storagectl --add, --controller)
CONTROLLERS = {
    "ide": ("IDE Controller", "ide", "PIIX4"),
    "sata": ("SATA Controller", "sata", "IntelAhci"),
    "scsi": ("SCSI Controller", "scsi", "LSILogic"),
    "pcie": ("NVMe Controller", "pcie", "NVMe"),
    "virtio": ("VirtIO Controller", "virtio-scsi", "VirtIO"),
}
# Where each DVD goes, by interface (Packer's StepAttachISOs): (port, device).
DVD_SLOTS = {"boot_iso": {"ide": (0, 1), "sata": (13, 0), "virtio": (13, 0)},
             "guest_additions": {"ide": (1, 0), "sata": (14, 0), "virtio": (14, 0)},
             "cd_files": {"ide": (1, 1), "sata": (15, 0), "virtio": (15, 0)}}
NAT_RULE = "packercomm"
OWNER_KEY = "factory/owner"        # extradata that marks a VM factory created (and which run made it)


def on_off(value: bool) -> str:
    return "on" if value else "off"


@dataclass(frozen=True)
class Dvd:
    """A DVD to attach: what it is (a DVD_SLOTS key), its file and the controller interface it goes on."""

    role: str
    path: Path
    interface: str = "ide"

    def slot(self) -> tuple[str, int, int]:
        name = CONTROLLERS[self.interface][0]
        port, device = DVD_SLOTS[self.role][self.interface]
        return name, port, device


def create_vm(cfg: VirtualBoxIsoSource, name: str, basefolder: Path) -> list[list[str]]:
    """createvm and the hardware of virtualbox-iso (one modifyvm: VBoxManage takes any number of settings)."""
    settings = ["--boot1", "disk", "--boot2", "dvd", "--boot3", "none", "--boot4", "none",
                "--cpus", str(cfg.cpus), "--memory", str(cfg.memory), "--chipset", cfg.chipset,
                "--firmware", cfg.firmware, "--rtcuseutc", on_off(cfg.rtc_time_base == "UTC"),
                "--nested-hw-virt", on_off(cfg.nested_virt), "--nic1", "nat", "--nictype1", cfg.nic_type,
                "--vram", str(cfg.gfx_vram_size), "--accelerate3d", on_off(cfg.gfx_accelerate_3d),
                "--usb", on_off(cfg.usb)]
    settings += ["--audio", "none"] if cfg.sound == "none" else ["--audio", cfg.sound, "--audiocontroller",
                                                                 cfg.audio_controller]
    if cfg.gfx_controller:
        settings += ["--graphicscontroller", cfg.gfx_controller]
    if cfg.usb_controller:
        settings += [f"--usb{cfg.usb_controller}", "on"]
    if cfg.mouse:
        settings += ["--mouse", cfg.mouse]
    if cfg.keyboard:
        settings += ["--keyboard", cfg.keyboard]
    cmds = [["createvm", "--name", name, "--ostype", cfg.guest_os_type, "--basefolder", str(basefolder),
             "--register"], ["modifyvm", name, *settings]]
    if cfg.gfx_efi_resolution:
        cmds.append(["setextradata", name, "VBoxInternal2/EfiGraphicsResolution", cfg.gfx_efi_resolution])
    return cmds


def define_iso_vm(cfg: VirtualBoxIsoSource, name: str, basefolder: Path, dvds: list[Dvd]) -> list[list[str]]:
    """Everything virtualbox-iso runs to define its VM: createvm, hardware, controllers, new disks (VDI, in the
    VM's folder), then the DVDs."""
    cmds = create_vm(cfg, name, basefolder)
    # DVDs sit on ports 13..15 of a SATA or VirtIO controller (Packer's slots): it needs 16 ports then.
    dvd_ports = 16 if any(d.interface == cfg.hard_drive_interface for d in dvds) else 1
    ports = {"sata": cfg.sata_port_count, "pcie": cfg.nvme_port_count}.get(cfg.hard_drive_interface, 1)
    cmds.append(controller(name, cfg.hard_drive_interface, ports=max(ports, dvd_ports)))
    for iface in sorted({d.interface for d in dvds} - {cfg.hard_drive_interface}):
        cmds.append(controller(name, iface, ports=16))
    folder = basefolder / name
    for i, size in enumerate([cfg.disk_size, *cfg.disk_additional_size]):
        disk = folder / (f"{name}.vdi" if i == 0 else f"{name}-{i}.vdi")
        cmds += [create_disk(disk, size), attach_disk(name, cfg.hard_drive_interface, i, disk, cfg)]
    return cmds


def mark_owner(name: str, owner: str) -> list[str]:
    return ["setextradata", name, OWNER_KEY, owner]


def read_owner(name: str) -> list[str]:
    return ["getextradata", name, OWNER_KEY]


def owner_of(getextradata_output: str) -> str | None:
    """The value `getextradata` printed (`Value: ...`), or None for VirtualBox's `No value set!`."""
    for line in getextradata_output.splitlines():
        if line.startswith("Value: "):
            return line[len("Value: "):].strip()
    return None


def register_iso_vm(cfg: VirtualBoxIsoSource, name: str, basefolder: Path, dvds: list[Dvd], owner: str,
                    vm_uuid: str) -> list[list[str]]:
    """define_iso_vm with the UUID factory chose (`createvm --uuid`: the VM is known as this build's before it
    exists, so a Ctrl-C between createvm and the next command leaves nothing unidentified) and factory's owner
    mark right after `createvm`."""
    createvm, *rest = define_iso_vm(cfg, name, basefolder, dvds)
    return [[*createvm, "--uuid", vm_uuid], mark_owner(name, owner), *rest]


def serial_to_file(name: str, log: Path) -> list[str]:
    """The first serial port (COM1) written to a file: the guest's console, for factory's serial log."""
    return ["modifyvm", name, "--uart1", "0x3F8", "4", "--uartmode1", "file", str(log)]


def controller(name: str, interface: str, *, ports: int = 1) -> list[str]:
    ctl, bus, kind = CONTROLLERS[interface]
    cmd = ["storagectl", name, "--name", ctl, "--add", bus, "--controller", kind]
    if interface in ("sata", "pcie", "virtio"):
        cmd += ["--portcount", str(ports)]
    return cmd


def create_disk(path: Path, size_mib: int) -> list[str]:
    return ["createmedium", "disk", "--filename", str(path), "--size", str(size_mib), "--format", "VDI",
            "--variant", "Standard"]


def attach_disk(name: str, interface: str, port: int, disk: Path, cfg: VirtualBoxIsoSource) -> list[str]:
    ctl = CONTROLLERS[interface][0]
    # IDE holds two devices per channel: disk n goes to port n // 2, device n % 2 (port 0 device 1 is the ISO's).
    p, device = (port, 0) if interface != "ide" else (port // 2 if port else 0, 0 if not port else port % 2)
    cmd = ["storageattach", name, "--storagectl", ctl, "--port", str(p), "--device", str(device), "--type", "hdd",
           "--medium", str(disk)]
    if cfg.hard_drive_nonrotational:
        cmd += ["--nonrotational", "on"]
    if cfg.hard_drive_discard:
        cmd += ["--discard", "on"]
    return cmd


def attach_dvd(name: str, dvd: Dvd) -> list[str]:
    ctl, port, device = dvd.slot()
    return ["storageattach", name, "--storagectl", ctl, "--port", str(port), "--device", str(device),
            "--type", "dvddrive", "--medium", str(dvd.path)]


def detach_dvd(name: str, dvd: Dvd) -> list[str]:
    ctl, port, device = dvd.slot()
    return ["storageattach", name, "--storagectl", ctl, "--port", str(port), "--device", str(device),
            "--type", "dvddrive", "--medium", "none"]


FLOPPY_CONTROLLER = "Floppy Controller"


def attach_floppy(name: str, image: Path) -> list[list[str]]:
    """Packer's StepAttachFloppy: a floppy controller and the image in its first drive."""
    return [["storagectl", name, "--name", FLOPPY_CONTROLLER, "--add", "floppy"],
            ["storageattach", name, "--storagectl", FLOPPY_CONTROLLER, "--port", "0", "--device", "0",
             "--type", "fdd", "--medium", str(image)]]


def detach_floppy(name: str) -> list[str]:
    return ["storageattach", name, "--storagectl", FLOPPY_CONTROLLER, "--port", "0", "--device", "0",
            "--medium", "none"]


def import_appliance(source: Path, name: str, basefolder: Path, flags: list[str], options: str | None
                     ) -> list[str]:
    cmd = ["import", str(source), "--vsys", "0", "--vmname", name, "--basefolder", str(basefolder)]
    if options:
        cmd += ["--options", options]
    return [*cmd, *flags]


def nat_rule(name: str, host: str, host_port: int, guest_port: int) -> list[str]:
    return ["modifyvm", name, "--natpf1", f"{NAT_RULE},tcp,{host},{host_port},,{guest_port}"]


def delete_nat_rule(name: str) -> list[str]:
    return ["modifyvm", name, "--natpf1", "delete", NAT_RULE]


def vrdp(name: str, address: str, port: int) -> list[str]:
    return ["modifyvm", name, "--vrde", "on", "--vrdeaddress", address, "--vrdeport", str(port)]


def start(name: str, headless: bool) -> list[str]:
    return ["startvm", name, "--type", "headless" if headless else "gui"]


def export(name: str, out: Path, opts: list[str]) -> list[str]:
    return ["export", name, "--output", str(out), *opts]


def unregister(name: str) -> list[str]:
    return ["unregistervm", name, "--delete"]
