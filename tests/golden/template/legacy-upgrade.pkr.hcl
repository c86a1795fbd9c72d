# Upgraded from legacy.json (legacy Packer JSON) by factory hcl2_upgrade.

locals {
  timestamp = regex_replace(timestamp(), "[- TZ:]", "")
}

packer {
  required_version = ">= 1.5.0"
}

variable "greeting" {
  type    = string
  default = "hello"
}

variable "disk" {
  type    = string
  default = "${env("LEGACY_DISK")}"
}

variable "password" {
  type      = string
  default   = "s3cret-legacy-pw"
  sensitive = true
}

variable "cpus" {
  type    = string
  default = "2"
}

locals {
  name = "vm-${var.greeting}"
}

source "qemu" "qemu" {
  iso_url      = "grub.img"
  iso_checksum = "none"
  disk_image   = true
  headless     = true
  vm_name      = "${local.name}-${local.timestamp}"
  ssh_username = "root"
  boot_command = [
    "<esc><wait>",
    "url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x $${literal}<enter>",
  ]
}

source "qemu" "second" {
  iso_url      = "grub.img"
  iso_checksum = "none"
  disk_image   = true
  ssh_username = "root"
}

build {
  sources = ["source.qemu.qemu", "source.qemu.second"]

  provisioner "shell" {
    inline = ["echo ${var.greeting} ${source.name} ${path.root} ${uuidv4()}"]
    only   = ["qemu.qemu"]
  }

  provisioner "shell-local" {
    inline = ["echo ${legacy_isotime("2006")} ${packer.version} ${path.cwd}"]
    override = {
      "qemu.second" = {
        inline = ["echo overridden"]
      }
    }
  }

  post-processor "checksum" {}

  post-processors {
    post-processor "manifest" {
      output = "m.json"
    }
    post-processor "checksum" {}
  }
}
