"""Artifacts: what a build produces (a typed object post-processors consume) and the disk exporters."""
