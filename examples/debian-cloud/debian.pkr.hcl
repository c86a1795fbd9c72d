# A Debian 12 cloud image, customised over SSH and written as a compacted qcow2.
#
#   python tools/mkguest.py --cache --output build/guest      # the "vendor" cloud image (no users, no keys)
#   factory build -var guest_image=build/guest/debian-12-guest.qcow2 examples/debian-cloud
#
# No password or key is configured: factory generates an ephemeral ed25519 key pair for the build and adds it
# to the cloud-init user-data below for ssh_username.

variable "guest_image" {
  type        = string
  description = "Path (or URL) of the Debian 12 cloud image to start from."
}

variable "ssh_username" {
  type    = string
  default = "builder"
}

variable "hostname" {
  type    = string
  default = "factory-demo"
}

source "qemu" "cloud" {
  iso_url          = var.guest_image
  iso_checksum     = "none"
  disk_image       = true
  disk_size        = "4G"
  format           = "qcow2"
  efi_boot         = true
  machine_type     = "q35"
  cpus             = 2
  memory           = 1024
  headless         = true
  accelerator      = "auto"

  cd_label = "cidata"
  cd_content = {
    "user-data" = templatefile("${path.root}/user-data.pkrtpl.hcl", { hostname = var.hostname })
    "meta-data" = <<-EOT
      instance-id: ${var.hostname}
      local-hostname: ${var.hostname}
    EOT
  }

  ssh_username     = var.ssh_username
  ssh_timeout      = "10m"
  shutdown_command = "sudo systemctl poweroff"
  shutdown_timeout = "3m"

  output_directory = "output-debian-cloud"
  vm_name          = "debian-cloud.qcow2"
}

build {
  name    = "demo"
  sources = ["source.qemu.cloud"]

  provisioner "shell" {
    inline = [
      "echo \"hello from $(hostname), kernel $(uname -r)\"",
      "echo 'Built by factory' | sudo tee /etc/motd",
    ]
  }

  provisioner "file" {
    content     = "factory-demo build ${var.hostname}\n"
    destination = "/tmp/factory-release"
  }

  provisioner "shell" {
    environment_vars = ["RELEASE_FILE=/etc/factory-release"]
    inline           = ["sudo install -m 0644 /tmp/factory-release \"$RELEASE_FILE\"", "cat \"$RELEASE_FILE\""]
  }

  post-processor "manifest" {
    output     = "output-debian-cloud/manifest.json"
    strip_path = true
  }

  post-processor "checksum" {
    checksum_types = ["sha256"]
    output         = "output-debian-cloud/{{.BuildName}}.{{.ChecksumType}}"
  }
}
