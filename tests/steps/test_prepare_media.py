"""Preparation steps against real servers and qemu-img: FetchMedia's iso_target_path / iso_target_extension
(where the fetched ISO is stored, Packer's naming) and iso_skip_cache (the first URL answering HEAD goes to QEMU,
nothing is downloaded); Http with http_network_protocol; CreateDisk with qemu_img_args."""

from __future__ import annotations

import hashlib
import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fixtures.httpfiles import serving

from factory.build import EventBus
from factory.errors import FactoryError
from factory.machine.driver import driver
from factory.schema.qemu import QemuSource
from factory.steps.context import BuildContext
from factory.steps.prepare import CreateDisk, FetchMedia, Http

DATA = b"not really an ISO, but bytes with a checksum\n" * 100
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "disk.iso").write_bytes(DATA)
    with serving(root) as served:
        yield served


def _fetch(tmp_path: Path, **options: Any) -> BuildContext:
    config = QemuSource(ssh_username="u", **options)
    ctx = BuildContext(build_name="t", bus=EventBus(), config=config, root=tmp_path)
    ctx.source_name, ctx.root = "t", tmp_path
    FetchMedia().run(ctx)
    return ctx


def test_target_directory_gets_packers_name_and_a_matching_file_is_not_fetched_again(
        tmp_path: Path, server: tuple[str, list[str]]) -> None:
    base, seen = server
    checksum = f"sha256:{SHA}"
    ctx = _fetch(tmp_path, iso_url=f"{base}/disk.iso", iso_checksum=checksum, iso_target_path="isos",
                 iso_target_extension="IMG")
    expected = tmp_path / "isos" / f"{hashlib.sha1(checksum.encode()).hexdigest()}.img"
    assert ctx.media == expected and expected.read_bytes() == DATA
    assert seen == ["GET /disk.iso"]
    again = _fetch(tmp_path, iso_url=f"{base}/disk.iso", iso_checksum=checksum, iso_target_path="isos",
                   iso_target_extension="IMG")
    assert again.media == expected and seen == ["GET /disk.iso"]  # the stored file matched: no request


def test_target_with_an_extension_is_the_file_itself_and_a_stale_one_is_replaced(
        tmp_path: Path, server: tuple[str, list[str]]) -> None:
    base, _ = server
    target = tmp_path / "keep" / "my.iso"
    target.parent.mkdir()
    target.write_bytes(b"stale")
    ctx = _fetch(tmp_path, iso_url=f"{base}/disk.iso", iso_checksum=SHA, iso_target_path=str(target))
    assert ctx.media == target and target.read_bytes() == DATA
    assert not list(target.parent.glob(".*.part"))


def test_skip_cache_hands_the_first_answering_url_to_qemu_without_downloading(
        tmp_path: Path, server: tuple[str, list[str]]) -> None:
    base, seen = server
    ctx = _fetch(tmp_path, iso_urls=[f"{base}/missing.iso", f"{base}/disk.iso"], iso_checksum=SHA,
                 iso_skip_cache=True)
    assert ctx.media_url == f"{base}/disk.iso" and ctx.media is None
    assert seen == ["HEAD /missing.iso", "HEAD /disk.iso"]
    with pytest.raises(FactoryError, match="iso_skip_cache: no ISO URL answered") as err:
        _fetch(tmp_path, iso_url=f"{base}/missing.iso", iso_checksum="none", iso_skip_cache=True)
    assert "404" in err.value.message and err.value.hint


def _ctx(tmp_path: Path, **options: Any) -> BuildContext:
    config = QemuSource(ssh_username="u", **options)
    ctx = BuildContext(build_name="t", bus=EventBus(), config=config, root=tmp_path)
    ctx.source_name, ctx.root = "t", tmp_path
    return ctx


def test_http_network_protocol_tcp6_serves_on_ipv6_and_the_guest_is_told_the_ipv6_host(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, http_network_protocol="tcp6", http_content={"/ks.cfg": "url {{ .HTTPIP }}"},
               http_port_min=48501, http_port_max=48600)
    ctx.workdir = tmp_path
    Http().run(ctx)
    try:
        assert ctx.http is not None and ctx.template_values["HTTPIP"] == "[fec0::2]"
        with urllib.request.urlopen(f"http://[::1]:{ctx.http.port}/ks.cfg", timeout=10) as resp:
            assert resp.read() == b"url [fec0::2]"
    finally:
        ctx.cleanups.run_all(lambda label: None)


def test_qemu_img_args_create_reaches_the_build_disks(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, disk_size="32M", disk_additional_size=["16M"],
               qemu_img_args={"create": ["-o", "cluster_size=131072"]})
    ctx.driver, ctx.staging = driver("qemu"), tmp_path
    CreateDisk().run(ctx)
    for disk in (ctx.disk, *ctx.extra_disks):
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disk)], check=True,
                                         capture_output=True, text=True).stdout)
        assert info["cluster-size"] == 128 * 1024, disk


@pytest.mark.parametrize("backing", [False, True])
def test_skip_cache_disk_image_is_read_from_the_url_by_qemu_img(tmp_path: Path, backing: bool) -> None:
    www = tmp_path / "www"
    www.mkdir()
    image = www / "cloud.raw"
    image.write_bytes(b"\xeb\x63" + bytes(510) + b"FACTORY-SKIP-CACHE" * 1000 + bytes(4 * 1024 * 1024))
    with serving(www) as (base, seen):
        ctx = _ctx(tmp_path, iso_url=f"{base}/cloud.raw", iso_checksum="none", iso_skip_cache=True,
                   disk_image=True, disk_size="8M", use_backing_file=backing)
        ctx.driver, ctx.staging = driver("qemu"), tmp_path
        FetchMedia().run(ctx)
        CreateDisk().run(ctx)
        assert ctx.disk is not None and ctx.media is None
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(ctx.disk)], check=True,
                                         capture_output=True, text=True).stdout)
        if backing:
            assert info["backing-filename"] == f"{base}/cloud.raw"
        # The disk (as the copy, or through its backing URL read by curl) holds the image's bytes.
        same = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(image), str(ctx.disk)],
                              capture_output=True, text=True)
        assert same.returncode == 0, same.stdout + same.stderr
    assert any("bytes=" in r for r in seen) and not any(r.startswith("GET") and "bytes=" not in r for r in seen)
