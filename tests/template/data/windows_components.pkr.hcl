source "null" "w" {
  communicator   = "winrm"
  winrm_host     = "127.0.0.1"
  winrm_username = "vagrant"
  winrm_password = "vagrant"
  winrm_port     = 5986
  winrm_timeout  = "2h"
  winrm_use_ssl  = true
  winrm_insecure = true
  winrm_use_ntlm = true
  winrm_no_proxy = true
}
source "null" "l" {
  communicator = "none"
}
build {
  sources = ["source.null.w", "source.null.l"]
  provisioner "powershell" {
    elevated_user     = "vagrant"
    elevated_password = "vagrant"
    inline            = ["Write-Host hi"]
    except            = ["null.l"]
  }
  provisioner "windows-restart" {
    restart_timeout = "30m"
    except          = ["null.l"]
  }
  provisioner "windows-update" {
    search_criteria = "IsInstalled=0"
    filters         = ["include:$true"]
    except          = ["null.l"]
  }
  provisioner "windows-shell" {
    inline = ["dir"]
    except = ["null.l"]
  }
  provisioner "shell-local" {
    inline = ["echo local-ok"]
  }
}
