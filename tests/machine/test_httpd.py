"""The build's HTTP server: http_content and http_directory served on a reserved port, freed on stop."""

from __future__ import annotations

import random
import socket
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.machine.httpd import HttpServer


def _get(port: int, path: str) -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
        return bytes(resp.read())


def test_content_served_and_port_freed(tmp_path: Path) -> None:
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


def test_directory_served(tmp_path: Path) -> None:
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "user-data").write_text("#cloud-config\n")
    srv = HttpServer(directory=tmp_path / "www", port_min=48201, port_max=48300)
    try:
        assert _get(srv.port, "/user-data") == b"#cloud-config\n"
    finally:
        srv.stop()


def test_tcp6_listens_on_ipv6_only_and_the_guest_address_is_bracketed(tmp_path: Path) -> None:
    srv = HttpServer(content={"/ks.cfg": b"v6"}, port_min=48301, port_max=48400, protocol="tcp6")
    try:
        with urllib.request.urlopen(f"http://[::1]:{srv.port}/ks.cfg", timeout=10) as resp:
            assert resp.read() == b"v6"
        with pytest.raises(urllib.error.URLError):
            _get(srv.port, "/ks.cfg")  # IPv6 only: nothing answers on 127.0.0.1
        assert srv.guest_host == "[fec0::2]"
    finally:
        srv.stop()
    v4 = HttpServer(content={"/a": b"4"}, port_min=48301, port_max=48400, protocol="tcp4")
    try:
        assert _get(v4.port, "/a") == b"4" and v4.guest_host == "10.0.2.2"
    finally:
        v4.stop()


@pytest.mark.parametrize(("bind", "protocol", "message"), [
    ("127.0.0.1", "unix", "cannot reach a host socket file"),
    ("::1", "tcp4", "IPv6 but http_network_protocol is tcp4"),
    ("192.0.2.1", "tcp6", "IPv4 but http_network_protocol is tcp6"),
    ("localhost", "tcp", "not an IP address"),
])
def test_bad_protocol_and_address_pairs_are_user_errors(bind: str, protocol: str, message: str) -> None:
    with pytest.raises(FactoryError, match=message) as err:
        HttpServer(content={}, bind=bind, protocol=protocol)
    assert err.value.hint


def _busy_port_with_a_free_neighbour() -> socket.socket:
    """A listening socket on port P where P+1 is free, both below the kernel's ephemeral range (32768+): the
    neighbour of an ephemeral port was once some other connection's own port (CI: "no free port in P..P+1")."""
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        busy = socket.socket()
        try:
            busy.bind(("127.0.0.1", port))
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            busy.close()
            continue
        busy.listen()
        return busy
    raise AssertionError("no port pair free in 20000..32000")


def test_a_port_another_program_listens_on_is_skipped(tmp_path: Path) -> None:
    with _busy_port_with_a_free_neighbour() as busy:
        port = busy.getsockname()[1]
        srv = HttpServer(content={"/x": b"x"}, port_min=port, port_max=port + 1)
        try:
            assert srv.port == port + 1 and _get(srv.port, "/x") == b"x"
        finally:
            srv.stop()


def _status(port: int, path: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, bytes(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, b""


def test_a_nocloud_seed_without_vendor_data_gets_an_empty_one_instead_of_a_404(tmp_path: Path) -> None:
    """cloud-init 22.x retries a 404 on vendor-data ten times, a second apart (10 s of every nocloud-net boot)."""
    www = tmp_path / "www"
    for folder in (www / "seed", www / "full", www / "other"):
        folder.mkdir(parents=True)
    for name, text in (("meta-data", "instance-id: a\n"), ("user-data", "#cloud-config\n")):
        (www / "seed" / name).write_text(text)
        (www / "full" / name).write_text(text)
    (www / "full" / "vendor-data").write_text("#cloud-config\nruncmd: [true]\n")
    (www / "other" / "user-data").write_text("#cloud-config\n")
    lines: list[str] = []
    srv = HttpServer(directory=www, port_min=48401, port_max=48500, emit=lines.append)
    try:
        assert _status(srv.port, "/seed/vendor-data") == (200, b"")
        assert _status(srv.port, "/seed/vendor-data", "HEAD") == (200, b"")
        assert _status(srv.port, "/full/vendor-data") == (200, b"#cloud-config\nruncmd: [true]\n")
        assert _status(srv.port, "/other/vendor-data")[0] == 404  # not a seed: no meta-data beside it
        assert _status(srv.port, "/seed/network-config")[0] == 404  # only vendor-data is filled in
        assert _status(srv.port, "/vendor-data")[0] == 404
    finally:
        srv.stop()
    assert sum("vendor-data is not in the seed: served empty" in line for line in lines) == 2

    content = HttpServer(content={"/meta-data": b"instance-id: b\n", "user-data": b"#cloud-config\n"},
                         port_min=48401, port_max=48500)
    try:
        assert _status(content.port, "/vendor-data") == (200, b"")
        assert _status(content.port, "/x/vendor-data")[0] == 404
    finally:
        content.stop()
