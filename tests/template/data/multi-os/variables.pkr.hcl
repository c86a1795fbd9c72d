variable "os_name" {
  type        = string
  description = "Distribution to build."
  validation {
    condition     = contains(["debian", "ubuntu", "rocky"], var.os_name)
    error_message = "The os_name must be debian, ubuntu or rocky."
  }
}

variable "os_version" {
  type = string
}

variable "arch" {
  type    = string
  default = "amd64"
}

variable "iso_checksum" {
  type    = string
  default = "none"
}

variable "cpus" {
  type    = number
  default = 2
}

variable "memory" {
  type    = number
  default = 2048
}

variable "disk_size" {
  type    = string
  default = "20G"
}

variable "headless" {
  type    = bool
  default = true
}

variable "build_user" {
  type    = string
  default = env("FACTORY_TEST_BUILD_USER")
}

variable "ssh_password" {
  type      = string
  default   = "vagrant-secret"
  sensitive = true
}

variable "extra_packages" {
  type    = list(string)
  default = []
}

variable "vbox_settings" {
  type = object({
    nic_type  = string
    vram      = optional(number)
    nested    = optional(bool)
  })
  default = {
    nic_type = "virtio"
  }
}

locals {
  family = var.os_name == "rocky" ? "rhel" : (var.os_name == "ubuntu" ? "ubuntu" : "debian")

  installer = local.family == "ubuntu" ? "autoinstall" : (
    local.family == "rhel" ? "kickstart" : "preseed"
  )

  vm_name = "${var.os_name}-${var.os_version}-${var.arch}"

  # A lookup table per family; try() falls back for families without an entry.
  boot_wait = try({ debian = "5s", ubuntu = "3s" }[local.family], "10s")

  owner = coalesce(var.build_user, "factory")

  ami_hint = try(data.amazon-ami.base.id, "no-ami")

  packages = distinct(concat(["openssh-server", "sudo"], var.extra_packages))

  boot_command = {
    preseed     = ["<esc><wait>", "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>"]
    autoinstall = ["c<wait>", "linux /casper/vmlinuz autoinstall ds=nocloud-net\\;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/<enter>", "boot<enter>"]
    kickstart   = ["<up><tab> inst.ks=http://{{ .HTTPIP }}:{{ .HTTPPort }}/ks.cfg<enter>"]
  }[local.installer]
}
