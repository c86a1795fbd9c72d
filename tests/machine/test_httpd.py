"""The build's HTTP server: http_content and http_directory served on a reserved port, freed on stop."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from factory.machine.httpd import HttpServer


def _get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return bytes(resp.read())


def test_content_served_and_port_freed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    lines: list[str] = []
    srv = HttpServer(content={"/preseed.cfg": b"d-i x"}, port_min=48100, port_max=48200, emit=lines.append)
    try:
        assert 48100 <= srv.port <= 48200
        assert _get(srv.port, "/preseed.cfg?x=1") == b"d-i x"
        with pytest.raises(urllib.error.HTTPError) as err:
            _get(srv.port, "/missing")
        assert err.value.code == 404
    finally:
        srv.stop()
    srv.stop()  # idempotent
    assert any("GET /preseed.cfg" in line for line in lines)
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", srv.port))  # nothing listens there any more
        s.listen()


def test_directory_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "user-data").write_text("#cloud-config\n")
    srv = HttpServer(directory=tmp_path / "www", port_min=48201, port_max=48300)
    try:
        assert _get(srv.port, "/user-data") == b"#cloud-config\n"
    finally:
        srv.stop()
