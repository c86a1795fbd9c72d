"""From a builder's communicator options (factory.schema.common.CommunicatorOptions, typed) to the SSHSettings the
communicator runs with. The builder fills in what only it knows (host, forwarded port, the ephemeral key, the
scaled timeout) with dataclasses.replace."""

from __future__ import annotations

import os
from pathlib import Path

from factory.comm.route import Bastion, Proxy
from factory.comm.ssh import SSHSettings
from factory.schema.common import CommunicatorOptions


def _path(root: Path, value: str | None) -> Path | None:
    return (root / os.path.expanduser(value)) if value else None


def _bastion(c: CommunicatorOptions, root: Path, username: str, key_file: Path | None,
             cert_file: Path | None) -> Bastion | None:
    if not c.ssh_bastion_host:
        return None
    own_key = _path(root, c.ssh_bastion_private_key_file)
    # Packer: a bastion without a key of its own uses ssh_private_key_file (and its certificate).
    return Bastion(host=c.ssh_bastion_host, port=c.ssh_bastion_port,
                   username=c.ssh_bastion_username or username, password=c.ssh_bastion_password,
                   private_key_file=own_key or key_file,
                   certificate_file=_path(root, c.ssh_bastion_certificate_file) if own_key else cert_file,
                   agent_auth=c.ssh_bastion_agent_auth, interactive=c.ssh_bastion_interactive)


def _proxy(c: CommunicatorOptions) -> Proxy | None:
    if not c.ssh_proxy_host:
        return None
    return Proxy(host=c.ssh_proxy_host, port=c.ssh_proxy_port, username=c.ssh_proxy_username,
                 password=c.ssh_proxy_password)


def ssh_settings_from(c: CommunicatorOptions, root: Path, username: str) -> SSHSettings:
    """Every communicator option of a source config (paths against root; durations are already seconds)."""
    key_file = _path(root, c.ssh_private_key_file)
    cert_file = _path(root, c.ssh_certificate_file)
    read_write = c.ssh_read_write_timeout
    return SSHSettings(
        host=c.ssh_host or "127.0.0.1",  # where QEMU forwards the host port (the builder replaces it otherwise)
        port=c.ssh_port,
        username=username,
        password=c.ssh_password,
        private_key_file=key_file,
        certificate_file=cert_file,
        timeout=c.ssh_timeout,
        handshake_attempts=c.ssh_handshake_attempts,
        pause_before_connecting=c.pause_before_connecting,
        keepalive_interval=c.ssh_keep_alive_interval,
        pty=c.ssh_pty,
        agent_auth=c.ssh_agent_auth,
        forward_agent=not c.ssh_disable_agent_forwarding,
        # As written: connect() offers the usable ones and says which it left out.
        ciphers=tuple(c.ssh_ciphers),
        kex_algorithms=tuple(c.ssh_key_exchange_algorithms),
        file_transfer=c.ssh_file_transfer_method,
        read_write_timeout=read_write if read_write and read_write > 0 else None,
        local_tunnels=c.ssh_local_tunnels,
        remote_tunnels=c.ssh_remote_tunnels,
        bastion=_bastion(c, root, username, key_file, cert_file),
        proxy=_proxy(c),
    )
