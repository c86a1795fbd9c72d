data "amazon-ami" "base" {
  filters = {
    name = "debian-12-*"
  }
  owners      = ["136693071363"]
  most_recent = true
}

source "qemu" "linux" {
  vm_name          = local.vm_name
  iso_url          = "https://mirror.example/${var.os_name}/${var.os_version}/${var.arch}/installer.iso"
  iso_checksum     = var.iso_checksum
  cpus             = var.cpus
  memory           = var.memory
  disk_size        = var.disk_size
  headless         = var.headless
  accelerator      = "tcg"
  format           = "qcow2"
  http_directory   = "${path.root}/http"
  boot_wait        = local.boot_wait
  boot_command     = local.boot_command
  ssh_username     = "vagrant"
  ssh_password     = var.ssh_password
  ssh_timeout      = "30m"
  shutdown_command = "echo '${var.ssh_password}' | sudo -S shutdown -P now"
  output_directory = "output/${local.vm_name}-qemu"
}

source "virtualbox-iso" "linux" {
  vm_name              = local.vm_name
  guest_os_type        = var.os_name == "ubuntu" ? "Ubuntu_64" : (var.os_name == "rocky" ? "RedHat_64" : "Debian_64")
  iso_url              = "https://mirror.example/${var.os_name}/${var.os_version}/${var.arch}/installer.iso"
  iso_checksum         = var.iso_checksum
  cpus                 = var.cpus
  memory               = var.memory
  headless             = var.headless
  nic_type             = var.vbox_settings.nic_type
  gfx_vram_size        = try(var.vbox_settings.vram, 16)
  hard_drive_interface = "sata"
  http_directory       = "${path.root}/http"
  boot_wait            = local.boot_wait
  boot_command         = local.boot_command
  ssh_username         = "vagrant"
  ssh_password         = var.ssh_password
  ssh_timeout          = "30m"
  shutdown_command     = "echo '${var.ssh_password}' | sudo -S shutdown -P now"
  vboxmanage = [
    ["modifyvm", "{{ .Name }}", "--nat-localhostreachable1", "on"],
  ]
}

source "hyperv-iso" "linux" {
  generation   = 2
  iso_url      = "https://mirror.example/${var.os_name}.iso"
  iso_checksum = var.iso_checksum
  switch_name  = "Default Switch"
}
