"""Settings derived from a source config: the HTTP server's bind address."""

from __future__ import annotations

from pathlib import Path

from factory.schema.qemu import QemuSource
from factory.steps.context import settings_from


def test_http_server_binds_loopback_by_default_and_honours_the_template(tmp_path: Path) -> None:
    base = {"iso_url": "a.iso", "iso_checksum": "none", "ssh_username": "root"}
    assert settings_from(QemuSource(**base), "x", tmp_path).http_bind_address == "127.0.0.1"
    wide = QemuSource(**base, http_bind_address="0.0.0.0")
    assert settings_from(wide, "x", tmp_path).http_bind_address == "0.0.0.0"
