# The README's guest built by HashiCorp Packer 1.6.6 (Debian's `packer`, qemu builder built in) AND by factory,
# unchanged: bench/bench_packer.py runs both on this file. Packer 1.6.6 lacks cd_content, efi_boot and
# templatefile, so the cidata seed is served from http_directory (cloud-init's nocloud-net, named through the
# SMBIOS serial) and UEFI comes from OVMF as -bios.

variable "image" {
  type = string
}

variable "accelerator" {
  type    = string
  default = "tcg"
}

variable "seed_dir" {
  type = string
}

variable "key_file" {
  type = string
}

variable "output" {
  type = string
}

source "qemu" "bench" {
  iso_url          = var.image
  iso_checksum     = "none"
  disk_image       = true
  format           = "qcow2"
  machine_type     = "q35"
  cpus             = 2
  memory           = 1024
  headless         = true
  accelerator      = var.accelerator
  net_device       = "virtio-net"
  disk_interface   = "virtio"
  http_directory   = var.seed_dir
  qemuargs = [
    ["-bios", "/usr/share/ovmf/OVMF.fd"],
    ["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"],
  ]
  boot_wait            = "0s"
  ssh_username         = "bench"
  ssh_private_key_file = var.key_file
  ssh_timeout          = "20m"
  shutdown_command     = "sudo poweroff"
  output_directory     = var.output
  vm_name              = "bench.qcow2"
}

build {
  sources = ["source.qemu.bench"]

  provisioner "shell" {
    inline = ["echo FIRST=$(date +%s.%N) UPTIME=$(cut -d' ' -f1 /proc/uptime)", "uname -r",
              "echo provisioned | sudo tee /etc/bench-marker"]
  }
}
