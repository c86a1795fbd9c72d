os_name    = "debian"
os_version = "12"
memory     = 4096
