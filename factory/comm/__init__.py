"""Communicators: how factory reaches a guest (SSH with paramiko) to run commands and move files."""
