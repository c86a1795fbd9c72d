os_name        = "ubuntu"
os_version     = "24.04"
extra_packages = ["cloud-init", "sudo"]
vbox_settings = {
  nic_type = "82540EM"
  vram     = 33
}
