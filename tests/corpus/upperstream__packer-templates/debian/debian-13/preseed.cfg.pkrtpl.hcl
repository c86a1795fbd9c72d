# Stub of the project's preseed template (its preseed directives are left out): the template directives and
# the variables the .pkr.hcl passes to templatefile() are kept as the project wrote them.
d-i debian-installer/locale string en_US
%{ for key, value in passwd }
d-i passwd/${key} ${value}
%{ endfor ~}
%{ for key, value in grub-installer }
d-i grub-installer/${key} ${value}
%{ endfor ~}
d-i preseed/late_command string \
    sed -i 's/^\(deb cdrom:.*\)$/#\1/' /target/etc/apt/sources.list
%{ for line in late_command ~}
${line}
%{ endfor ~}
