"""factory: a local, hypervisor-first VM image factory that runs Packer HCL2 templates."""

__version__ = "0.1.0"
