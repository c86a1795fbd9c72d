build {
  name        = "linux"
  description = "Base image for ${var.os_name} ${var.os_version}"

  sources = [
    "source.qemu.linux",
    "source.virtualbox-iso.linux",
    "source.hyperv-iso.linux",
  ]

  provisioner "shell" {
    name             = "packages"
    execute_command  = "echo '${var.ssh_password}' | {{ .Vars }} sudo -S -E sh -eux '{{ .Path }}'"
    environment_vars = ["PACKAGES=${join(" ", local.packages)}", "BUILDER=${source.type}"]
    inline           = ["apt-get install -y $PACKAGES"]
    max_retries      = 2
  }

  provisioner "shell" {
    name   = "guest-additions"
    inline = ["sh /home/vagrant/VBoxGuestAdditions.sh"]
    # Only VirtualBox guests get the additions; everything else skips this step.
    except = var.headless && local.family != "rhel" ? ["qemu.linux", "hyperv-iso.linux"] : ["hyperv-iso.linux"]
  }

  provisioner "file" {
    content     = templatefile("${path.root}/motd.pkrtpl", { name = local.vm_name, owner = local.owner })
    destination = "/etc/motd"
  }

  provisioner "shell-local" {
    inline       = ["echo built ${source.name} for ${local.owner}"]
    pause_before = "5s"
    timeout      = "2m"
  }

  error-cleanup-provisioner "shell-local" {
    inline = ["echo cleaning up ${local.vm_name}"]
  }

  post-processor "manifest" {
    output     = "manifest-${var.os_name}.json"
    strip_path = true
  }

  post-processors {
    post-processor "checksum" {
      checksum_types = ["sha256", "sha512"]
      output         = "output/{{ .BuildName }}.{{ .ChecksumType }}"
    }
    post-processor "compress" {
      output              = "output/${local.vm_name}.tar.gz"
      keep_input_artifact = true
      only                = ["qemu.linux"]
    }
  }
}
