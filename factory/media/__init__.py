"""Installer media: the ISO catalog, the verified download cache, unattended configs, remastering."""
