cpus      = 4
disk_size = "40G"
