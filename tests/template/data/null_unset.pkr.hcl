variable "v" {
  type    = string
  default = null
}
variable "w" {
  default     = null
  description = null
  sensitive   = null
}
locals {
  a = null
}
source "qemu" "x" {
  iso_url      = "disk.img"
  iso_urls     = null
  iso_checksum = "none"
  disk_image   = true
  ssh_username = "u"
  boot_command = null
  qemuargs     = null
  vm_name      = var.v
}
build {
  name    = null
  sources = ["source.qemu.x"]
  source "source.qemu.x" {
    name = "y"
    output_directory = null
  }
  provisioner "shell" {
    inline = ["true"]
    except = null
    only   = null
    pause_before = null
    max_retries = null
    timeout = null
    override = null
  }
  error-cleanup-provisioner "shell-local" {
    inline = ["true"]
    only = null
  }
  post-processor "manifest" {
    except = null
    only = null
    name = null
    keep_input_artifact = null
  }
  post-processors {
    post-processor "checksum" {
      only = null
      checksum_types = null
    }
  }
}
