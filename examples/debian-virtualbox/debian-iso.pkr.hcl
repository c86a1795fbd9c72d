# Debian 12 installed from the netinst ISO into a new VirtualBox VM (virtualbox-iso), the way Packer users write
# it: a preseed served over HTTP, the installer's boot menu edited by boot_command (typed with
# `VBoxManage controlvm ... keyboardputscancode`), exported as OVA.
#
#   factory validate examples/debian-virtualbox/debian-iso.pkr.hcl
#   factory build examples/debian-virtualbox/debian-iso.pkr.hcl          # needs VirtualBox
#
# The exact VBoxManage command lines it runs are in tests/golden/machine/virtualbox-iso.commands. It is validated
# and its command lines are checked here; it is not installed end to end (VirtualBox cannot run on the test
# machines, and the stand-in's QEMU would need an hour under TCG for a full Debian install).

variable "ssh_password" {
  type      = string
  default   = "factory"
  sensitive = true
}

source "virtualbox-iso" "debian" {
  iso_url      = "https://cdimage.debian.org/cdimage/archive/12.12.0/amd64/iso-cd/debian-12.12.0-amd64-netinst.iso"
  iso_checksum = "sha256:dfc30e04fd095ac2c07e998f145e94bb8f7d3a8eca3a631d2eb012398deae531"

  vm_name              = "factory-debian-iso"
  guest_os_type        = "Debian_64"
  firmware             = "efi"
  cpus                 = 2
  memory               = 2048
  disk_size            = 20000
  hard_drive_interface = "sata"
  iso_interface        = "sata"
  nic_type             = "virtio"
  gfx_controller       = "vmsvga"
  gfx_vram_size        = 16
  headless             = true
  guest_additions_mode = "upload"
  format               = "ova"
  export_opts          = ["--manifest", "--vsys", "0", "--description", "Debian 12 built by factory"]

  http_directory = "${path.root}/http"
  boot_wait      = "5s"
  boot_command = [
    "<wait><down>e<wait><down><down><down><end>",
    " auto=true priority=critical url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg",
    "<leftCtrlOn>x<leftCtrlOff>",
  ]

  vboxmanage = [
    ["modifyvm", "{{.Name}}", "--rtc-use-utc", "on"],
  ]
  vboxmanage_post = [
    ["modifyvm", "{{.Name}}", "--memory", "1024"],
  ]

  ssh_username     = "factory"
  ssh_password     = var.ssh_password
  ssh_timeout      = "60m"
  shutdown_command = "echo '${var.ssh_password}' | sudo -S systemctl poweroff"
}

build {
  sources = ["source.virtualbox-iso.debian"]

  provisioner "shell" {
    inline = ["sudo apt-get -y install build-essential dkms", "uname -a"]
  }
}
