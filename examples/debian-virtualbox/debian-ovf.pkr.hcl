# The README's Debian 12 guest, built with VirtualBox: imported from an OVA, customised over SSH, exported again.
#
#   python tools/mkguest.py --cache --output build/guest          # the "vendor" image (no users, no keys)
#   factory export build/guest/debian-12-guest.qcow2 --format ova --disk-interface ide --firmware efi \
#       --guest-os debian --output build/guest/debian-12-guest.ova   # factory's own deterministic OVA
#   factory build -var ova=build/guest/debian-12-guest.ova examples/debian-virtualbox/debian-ovf.pkr.hcl
#
# Artifacts: VirtualBox's export (output-debian-virtualbox/factory-debian-ovf.ova) and a Vagrant box with the
# virtualbox provider made from it as Packer makes one (debian-12-virtualbox.box: box.ovf, the VMDK, metadata.json).
#
# The guest gets its user and factory's ephemeral SSH key from cloud-init's nocloud-net data source, served by
# factory's HTTP server and named through the DMI system serial (VirtualBox extradata), as on QEMU with -smbios.
# The image's cloud kernel has no e1000 driver: the NIC is switched to virtio; it boots with UEFI.

variable "ova" {
  type        = string
  description = "The OVA of the Debian 12 guest (made by factory from tools/mkguest.py's image)."
}

variable "ssh_username" {
  type    = string
  default = "builder"
}

variable "output" {
  type    = string
  default = "output-debian-virtualbox"
}

variable "box" {
  type    = string
  default = "debian-12-virtualbox.box"
}

source "virtualbox-ovf" "debian" {
  source_path          = var.ova
  checksum             = "none"
  vm_name              = "factory-debian-ovf"
  headless             = true
  guest_additions_mode = "disable"
  format               = "ova"
  output_directory     = var.output

  http_content = {
    "/meta-data" = "instance-id: factory-debian-ovf\nlocal-hostname: factory-vbox\n"
    "/user-data" = <<-EOT
      #cloud-config
      users:
        - name: ${var.ssh_username}
          sudo: ALL=(ALL) NOPASSWD:ALL
          shell: /bin/bash
          ssh_authorized_keys: ["{{ .SSHPublicKey }}"]
    EOT
  }

  vboxmanage = [
    ["modifyvm", "{{.Name}}", "--firmware", "efi", "--memory", "1024", "--cpus", "2", "--nictype1", "virtio"],
    ["setextradata", "{{.Name}}", "VBoxInternal/Devices/efi/0/Config/DmiSystemSerial",
     "ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"],
  ]

  ssh_username     = var.ssh_username
  ssh_timeout      = "15m"
  shutdown_command = "sudo systemctl poweroff"
  shutdown_timeout = "5m"
}

build {
  name    = "vbox"
  sources = ["source.virtualbox-ovf.debian"]

  provisioner "shell" {
    inline = [
      "echo \"hello from $(hostname), kernel $(uname -r)\"",
      "echo 'Built by factory on VirtualBox' | sudo tee /etc/motd",
      "cat ~/.vbox_version",
    ]
  }

  post-processor "vagrant" {
    output              = var.box
    keep_input_artifact = true
  }
}
