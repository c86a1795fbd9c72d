# The README's Debian 12 guest (examples/debian-cloud) built through libvirt, in the community libvirt plugin's
# template shape: the cloud image and a cloud-init seed become storage volumes, the domain boots them, and the
# artifact volume stays in the pool (and is downloaded to output_directory).
#
#   python tools/mkguest.py --cache --output build/guest
#   factory build -var guest_image=build/guest/debian-12-guest.qcow2 examples/debian-libvirt
#
# The volumes go to the pool named by var.pool (`default` unless told; `virsh pool-list` shows yours). The
# domain is named factory-debian-<run id>; it and the seed volume are removed at the end, whatever ends the build.

variable "guest_image" {
  type        = string
  description = "URL (file://, http, https) of the Debian 12 cloud image to start from."
}

variable "libvirt_uri" {
  type    = string
  default = "qemu:///system"
}

variable "pool" {
  type        = string
  default     = "default"
  description = "libvirt storage pool that receives the volumes (it must exist)."
}

variable "ssh_username" {
  type    = string
  default = "builder"
}

variable "hostname" {
  type    = string
  default = "factory-demo"
}

source "libvirt" "debian" {
  libvirt_uri = var.libvirt_uri
  vcpu        = 2
  memory      = 1024
  chipset     = "q35"
  # The test guest boots systemd-boot unsigned: name the non-Secure-Boot OVMF build explicitly.
  loader_path    = "/usr/share/OVMF/OVMF_CODE_4M.fd"
  loader_type    = "pflash"
  nvram_template = "/usr/share/OVMF/OVMF_VARS_4M.fd"

  network_interface {
    type  = "user"
    alias = "communicator"
  }

  volume {
    alias    = "artifact"
    pool     = var.pool
    bus      = "virtio"
    format   = "qcow2"
    capacity = "4G"
    source {
      type     = "external"
      urls     = [var.guest_image]
      checksum = "none"
    }
  }

  volume {
    pool = var.pool
    bus  = "virtio"
    source {
      type      = "cloud-init"
      user_data = templatefile("${path.root}/user-data.pkrtpl.hcl", { hostname = var.hostname })
      meta_data = <<-EOT
        instance-id: ${var.hostname}
        local-hostname: ${var.hostname}
      EOT
    }
  }

  communicator {
    communicator = "ssh"
    ssh_username = var.ssh_username
    ssh_timeout  = "10m"
  }
  shutdown_mode    = "acpi"
  shutdown_timeout = "3m"
  output_directory = "output-debian-libvirt"
}

build {
  name    = "demo"
  sources = ["source.libvirt.debian"]

  provisioner "shell" {
    inline = [
      "echo \"hello from $(hostname), kernel $(uname -r)\"",
      "echo 'Built by factory' | sudo tee /etc/motd",
    ]
  }

  post-processor "manifest" {
    output     = "output-debian-libvirt/manifest.json"
    strip_path = true
  }
}
