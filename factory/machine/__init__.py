"""Hypervisor drivers behind one interface (QEMU via QMP first; libvirt and VirtualBox follow), plus the
accelerator probe and firmware discovery."""
