"""From a builder's communicator options (Packer's names, factory.schema.common.CommunicatorOptions) to the
SSHSettings the communicator runs with. The builder fills in what only it knows (host, forwarded port, the
ephemeral key, the scaled timeout) with dataclasses.replace."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from factory.comm.route import Bastion, Proxy
from factory.comm.ssh import SSHSettings
from factory.comm.tunnel import tunnels
from factory.schema.types import parse_duration


def _get(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


def _path(root: Path, value: str | None) -> Path | None:
    return (root / os.path.expanduser(value)) if value else None


def _bastion(config: Any, root: Path, key_file: Path | None, cert_file: Path | None) -> Bastion | None:
    host = _get(config, "ssh_bastion_host")
    if not host:
        return None
    own_key = _path(root, _get(config, "ssh_bastion_private_key_file"))
    # Packer: a bastion without a key of its own uses ssh_private_key_file (and its certificate).
    return Bastion(host=host, port=int(_get(config, "ssh_bastion_port", 22)),
                   username=_get(config, "ssh_bastion_username") or _get(config, "ssh_username", "root"),
                   password=_get(config, "ssh_bastion_password"),
                   private_key_file=own_key or key_file,
                   certificate_file=_path(root, _get(config, "ssh_bastion_certificate_file")) if own_key else cert_file,
                   agent_auth=bool(_get(config, "ssh_bastion_agent_auth", False)),
                   interactive=bool(_get(config, "ssh_bastion_interactive", False)))


def _proxy(config: Any) -> Proxy | None:
    host = _get(config, "ssh_proxy_host")
    if not host:
        return None
    return Proxy(host=host, port=int(_get(config, "ssh_proxy_port", 1080)),
                 username=_get(config, "ssh_proxy_username"), password=_get(config, "ssh_proxy_password"))


def ssh_settings_from(config: Any, root: Path, username: str) -> SSHSettings:
    """Every communicator option of a source config, parsed (durations in seconds, paths against root)."""
    key_file = _path(root, _get(config, "ssh_private_key_file"))
    cert_file = _path(root, _get(config, "ssh_certificate_file"))
    keepalive = parse_duration(_get(config, "ssh_keep_alive_interval", "5s"), what="ssh_keep_alive_interval")
    rw = _get(config, "ssh_read_write_timeout")
    read_write = parse_duration(rw, what="ssh_read_write_timeout") if rw else None
    return SSHSettings(
        host=_get(config, "ssh_host") or "127.0.0.1",
        port=int(_get(config, "ssh_port", 22)),
        username=username,
        password=_get(config, "ssh_password"),
        private_key_file=key_file,
        certificate_file=cert_file,
        timeout=parse_duration(_get(config, "ssh_timeout", "5m"), what="ssh_timeout"),
        handshake_attempts=int(_get(config, "ssh_handshake_attempts", 10)),
        pause_before_connecting=parse_duration(_get(config, "pause_before_connecting", "0s")),
        keepalive_interval=keepalive,
        pty=bool(_get(config, "ssh_pty", False)),
        agent_auth=bool(_get(config, "ssh_agent_auth", False)),
        forward_agent=not _get(config, "ssh_disable_agent_forwarding", False),
        # As written: connect() offers the usable ones and says which it left out.
        ciphers=tuple(_get(config, "ssh_ciphers", [])),
        kex_algorithms=tuple(_get(config, "ssh_key_exchange_algorithms", [])),
        file_transfer=_get(config, "ssh_file_transfer_method", "sftp"),
        read_write_timeout=read_write if read_write and read_write > 0 else None,
        local_tunnels=tunnels(_get(config, "ssh_local_tunnels", []), "ssh_local_tunnels"),
        remote_tunnels=tunnels(_get(config, "ssh_remote_tunnels", []), "ssh_remote_tunnels"),
        bastion=_bastion(config, root, key_file, cert_file),
        proxy=_proxy(config),
    )

