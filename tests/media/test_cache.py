"""The ISO cache against a real HTTP server on 127.0.0.1 (Range support, request counting, broken transfers)."""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.media import cache, signing

PAYLOAD = os.urandom(3 * (1 << 20) + 12345)  # not a multiple of the chunk size
SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Server:
    root: Path
    url: str
    gets: Counter[str] = field(default_factory=Counter)
    ranges: list[str] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes to send before dropping the connection
    delay: float = 0.0  # seconds per 256 KiB, to make transfers overlap


def _handler(srv: Server) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = srv.root / self.path.lstrip("/")
            srv.gets[self.path] += 1
            if not path.is_file():
                self.send_error(404)
                return
            data = path.read_bytes()
            start, status = 0, 200
            rng = self.headers.get("Range")
            if rng:
                srv.ranges.append(rng)
                start = int(rng.removeprefix("bytes=").split("-")[0])
                if start >= len(data):
                    self.send_error(416)
                    return
                status = 206
            self.send_response(status)
            self.send_header("Content-Length", str(len(data) - start))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            body = data[start:]
            cut = srv.cut_after.pop(self.path, None)
            if cut is not None:
                body = body[:cut]
            for i in range(0, len(body), 256 << 10):
                self.wfile.write(body[i:i + (256 << 10)])
                if srv.delay:
                    time.sleep(srv.delay)
            if cut is not None:
                self.close_connection = True
                self.connection.shutdown(2)

    return Handler


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    (root / "test.iso").write_bytes(PAYLOAD)
    (root / "SHA256SUMS").write_text(f"{'0' * 64}  other.iso\n{SHA}  test.iso\n")
    (root / "CHECKSUM").write_text(f"SHA256 (test.iso) = {SHA}\n")
    srv = Server(root, "")
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(srv))
    srv.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield srv
    httpd.shutdown()
    httpd.server_close()


def _cache_files() -> list[Path]:
    return [p for p in Path(os.environ["FACTORY_CACHE_DIR"]).rglob("*") if p.is_file()]


def test_download_verify_and_cache(server: Server) -> None:
    path = cache.fetch([f"{server.url}/test.iso"], f"sha256:{SHA}")
    assert path.read_bytes() == PAYLOAD
    assert path == cache.cached_path(SHA, "test.iso")  # content-addressed
    again = cache.fetch([f"{server.url}/test.iso"], SHA)  # bare hex is accepted too
    assert again == path and server.gets["/test.iso"] == 1


def test_mismatch_is_refused_and_leaves_no_file(server: Server) -> None:
    wrong = "f" * 64
    with pytest.raises(FactoryError) as exc:
        cache.fetch([f"{server.url}/test.iso"], f"sha256:{wrong}")
    assert f"expected sha256 {wrong}, got {SHA}" in exc.value.message
    assert not cache.cached_path(wrong, "test.iso").exists() and not cache.cached_path(SHA, "test.iso").exists()
    assert not [p for p in _cache_files() if p.name.endswith((".iso", ".part"))]


def test_resume_after_truncated_transfer(server: Server) -> None:
    server.cut_after["/test.iso"] = 1_000_000
    with pytest.raises(FactoryError, match="will resume"):
        cache.fetch([f"{server.url}/test.iso"], f"sha256:{SHA}")
    partial = [p for p in _cache_files() if p.name.endswith(".part")]
    assert len(partial) == 1 and partial[0].stat().st_size == 1_000_000
    path = cache.fetch([f"{server.url}/test.iso"], f"sha256:{SHA}")
    assert path.read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=1000000-"] and not partial[0].exists()


def test_next_url_is_tried(server: Server) -> None:
    path = cache.fetch([f"{server.url}/missing.iso", f"{server.url}/test.iso"], f"sha256:{SHA}", filename="test.iso")
    assert path.read_bytes() == PAYLOAD and server.gets["/missing.iso"] == 1


def test_unreachable_names_every_url(server: Server) -> None:
    with pytest.raises(FactoryError) as exc:
        cache.fetch([f"{server.url}/a.iso", "http://127.0.0.1:9/b.iso"], f"sha256:{SHA}")
    assert "a.iso: HTTP 404" in exc.value.message and "b.iso:" in exc.value.message


def test_two_processes_download_once(server: Server) -> None:
    server.delay = 0.05
    code = (f"from factory.media import cache; "
            f"print(cache.fetch([{server.url + '/test.iso'!r}], 'sha256:{SHA}'))")
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1].decode() for o in outs]
    paths = {o[0].decode().strip() for o in outs}
    assert paths == {str(cache.cached_path(SHA, "test.iso"))}
    assert server.gets["/test.iso"] == 1


def test_checksum_file_gnu_and_bsd(server: Server) -> None:
    path = cache.fetch([f"{server.url}/test.iso"], f"file:{server.url}/SHA256SUMS")
    assert path == cache.cached_path(SHA, "test.iso")
    assert cache.verify(path, f"file:{server.url}/CHECKSUM") == SHA
    assert cache.verify(path, f"file:{server.root / 'SHA256SUMS'}") == SHA


def test_checksum_file_mismatch_and_unlisted(server: Server, tmp_path: Path) -> None:
    (server.root / "SHA256SUMS").write_text(f"{'1' * 64}  test.iso\n")
    with pytest.raises(FactoryError, match="checksum mismatch"):
        cache.fetch([f"{server.url}/test.iso"], f"file:{server.url}/SHA256SUMS")
    sums = tmp_path / "SUMS"
    sums.write_text(f"{SHA}  else.iso\n")
    with pytest.raises(FactoryError, match=r"test\.iso is not listed"):
        cache.fetch([f"{server.url}/test.iso"], f"file:{sums}")


def test_local_path_is_verified_in_place(tmp_path: Path) -> None:
    iso = tmp_path / "mine.iso"
    iso.write_bytes(PAYLOAD)
    assert cache.fetch([str(iso)], f"sha256:{SHA}") == iso
    assert cache.fetch([iso.as_uri()], "none") == iso
    with pytest.raises(FactoryError, match="checksum mismatch"):
        cache.fetch([str(iso)], "sha256:" + "0" * 64)
    with pytest.raises(FactoryError, match="ISO not found"):
        cache.fetch([str(tmp_path / "nope.iso")], "none")


def test_a_local_image_with_checksum_none_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing to compare with: hashing a 400 MB base image on every build only cost time (stage IDs remember
    # its digest by identity, factory.build.content_digest).
    image = tmp_path / "base.qcow2"
    image.write_bytes(PAYLOAD)
    reads: list[Path] = []
    real = cache.file_digests
    monkeypatch.setattr(cache, "file_digests", lambda path, *a, **kw: reads.append(path) or real(path, *a, **kw))
    assert cache.fetch([str(image)], "none") == image and reads == []
    assert cache.fetch([str(image)], f"sha256:{SHA}") == image and reads == [image]


def test_packer_algorithms_sha512_md5_sha1(server: Server, tmp_path: Path) -> None:
    """Packer templates pin with sha512/sha1/md5 too; the cache still lands the file by sha256."""
    sha512 = hashlib.sha512(PAYLOAD).hexdigest()
    path = cache.fetch([f"{server.url}/test.iso"], f"sha512:{sha512}")
    assert path == cache.cached_path(SHA, "test.iso")
    assert cache.fetch([f"{server.url}/test.iso"], sha512) == path  # bare hex: algorithm from its length
    assert server.gets["/test.iso"] == 1
    assert cache.verify(path, f"md5:{hashlib.md5(PAYLOAD).hexdigest()}") == SHA
    assert cache.verify(path, hashlib.sha1(PAYLOAD).hexdigest()) == SHA
    (server.root / "SHA512SUMS").write_text(f"{sha512}  test.iso\n")
    assert cache.verify(path, f"file:{server.url}/SHA512SUMS") == SHA
    with pytest.raises(FactoryError, match=f"expected sha512 {'0' * 128}, got {sha512}"):
        cache.verify(path, "sha512:" + "0" * 128)


def test_bad_checksum_spec() -> None:
    with pytest.raises(FactoryError, match="md5 digests are 32 hex digits; got 3"):
        cache.Checksum.parse("md5:abc")


def test_offline_miss_names_file_and_sha(server: Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACTORY_OFFLINE", "1")
    monkeypatch.setenv("FACTORY_ISO_PATH", str(tmp_path))
    with pytest.raises(FactoryError) as exc:
        cache.fetch([f"{server.url}/test.iso"], f"sha256:{SHA}")
    assert f"test.iso (sha256 {SHA})" in exc.value.message
    assert str(tmp_path) in (exc.value.hint or "")
    assert sum(server.gets.values()) == 0  # offline never touched the network


def test_offline_hit_from_iso_path_by_checksum(server: Server, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
    store = tmp_path / "store"
    store.mkdir()
    (store / "renamed-by-user.iso").write_bytes(PAYLOAD)
    (store / "decoy.iso").write_bytes(b"not it")
    monkeypatch.setenv("FACTORY_ISO_PATH", f"{tmp_path / 'empty'}{os.pathsep}{store}")
    path = cache.fetch([f"{server.url}/test.iso"], f"sha256:{SHA}", offline=True)
    assert path == store / "renamed-by-user.iso" and sum(server.gets.values()) == 0


def test_offline_uses_checksum_list_kept_from_an_online_run(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    first = cache.fetch([f"{server.url}/test.iso"], f"file:{server.url}/SHA256SUMS")
    before = sum(server.gets.values())
    monkeypatch.setenv("FACTORY_OFFLINE", "1")
    assert cache.fetch([f"{server.url}/test.iso"], f"file:{server.url}/SHA256SUMS") == first
    assert sum(server.gets.values()) == before


# --- signatures (a key generated here stands in for the vendor's; see the report) --------------------------------

@dataclass
class Key:
    home: Path
    fingerprint: str
    ring: Path


def _gpg(home: Path, *args: str, input: bytes | None = None) -> bytes:
    return subprocess.run(["gpg", "--homedir", str(home), "--batch", "--yes", "--pinentry-mode", "loopback",
                           "--passphrase", "", *args], check=True, capture_output=True, input=input).stdout


def _make_key(base: Path, name: str) -> Key:
    home = base / name
    home.mkdir(mode=0o700)
    _gpg(home, "--quick-gen-key", f"{name} <{name}@example.invalid>", "ed25519", "sign", "never")
    fpr = next(line.split(":")[9] for line in _gpg(home, "--with-colons", "--list-keys").decode().splitlines()
               if line.startswith("fpr:"))
    ring = base / f"{name}.gpg"
    ring.write_bytes(_gpg(home, "--export", fpr))
    return Key(home, fpr, ring)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Key, Key]]:
    base = tmp_path_factory.mktemp("gpg")
    made = _make_key(base, "vendor"), _make_key(base, "mallory")
    yield made
    for key in made:  # signing started a gpg-agent per home; it would outlive the test run
        subprocess.run(["gpgconf", "--homedir", str(key.home), "--kill", "gpg-agent"], check=True)


def _sign(key: Key, file: Path, *, clear: bool = False) -> Path:
    out = file.with_name(file.name + (".asc" if clear else ".gpg"))
    _gpg(key.home, "--local-user", key.fingerprint, "--clearsign" if clear else "--detach-sign",
         "--output", str(out), str(file))
    return out


def test_signed_checksum_list_is_verified(server: Server, keys: tuple[Key, Key],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    vendor, _ = keys
    _sign(vendor, server.root / "SHA256SUMS")
    monkeypatch.setenv("FACTORY_KEYRING", str(vendor.ring))
    path = cache.fetch([f"{server.url}/test.iso"], f"file:{server.url}/SHA256SUMS",
                       signature=f"{server.url}/SHA256SUMS.gpg", key_fingerprint=vendor.fingerprint)
    assert path.read_bytes() == PAYLOAD


def test_tampered_list_fails_signature(server: Server, keys: tuple[Key, Key],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    vendor, _ = keys
    _sign(vendor, server.root / "SHA256SUMS")
    (server.root / "SHA256SUMS").write_text(f"{SHA}  test.iso\n")  # edited after signing
    monkeypatch.setenv("FACTORY_KEYRING", str(vendor.ring))
    with pytest.raises(FactoryError, match="bad OpenPGP signature"):
        cache.fetch([f"{server.url}/test.iso"], f"file:{server.url}/SHA256SUMS",
                    signature=f"{server.url}/SHA256SUMS.gpg", key_fingerprint=vendor.fingerprint)
    assert server.gets["/test.iso"] == 0  # nothing downloaded on an unauthenticated list


def test_signature_by_another_key_is_refused(server: Server, keys: tuple[Key, Key],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    vendor, mallory = keys
    _sign(mallory, server.root / "SHA256SUMS")
    monkeypatch.setenv("FACTORY_KEYRING", f"{vendor.ring}{os.pathsep}{mallory.ring}")
    with pytest.raises(FactoryError, match=f"not the pinned {vendor.fingerprint}"):
        cache.read_sums(f"{server.url}/SHA256SUMS", offline=False, signature=f"{server.url}/SHA256SUMS.gpg",
                        key_fingerprint=vendor.fingerprint)


def test_clearsigned_list(server: Server, keys: tuple[Key, Key], monkeypatch: pytest.MonkeyPatch) -> None:
    vendor, _ = keys
    signed = _sign(vendor, server.root / "CHECKSUM", clear=True)
    monkeypatch.setenv("FACTORY_KEYRING", str(vendor.ring))
    url = f"{server.url}/{signed.name}"
    text = cache.read_sums(url, offline=False, signature=url, key_fingerprint=vendor.fingerprint)
    assert cache.sums_lookup(text, "test.iso") == SHA and "PGP" not in text


def test_missing_key_warns_or_refuses(server: Server, keys: tuple[Key, Key], monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    vendor, mallory = keys
    _sign(vendor, server.root / "SHA256SUMS")
    monkeypatch.setenv("FACTORY_KEYRING", str(mallory.ring))  # the vendor key is not available
    monkeypatch.setattr(signing, "SYSTEM_KEYRINGS", tmp_path / "none")
    args = (f"{server.url}/SHA256SUMS",)
    kw = {"offline": False, "signature": f"{server.url}/SHA256SUMS.gpg", "key_fingerprint": vendor.fingerprint}
    assert cache.sums_lookup(cache.read_sums(*args, **kw), "test.iso") == SHA  # type: ignore[arg-type]
    monkeypatch.setenv("FACTORY_REQUIRE_SIGNATURE", "1")
    with pytest.raises(signing.KeyNotFound, match=vendor.fingerprint):
        cache.read_sums(*args, **kw)  # type: ignore[arg-type]


# --- real vendor signatures, checked with the keys shipped in isos/keys ------------------------------------------

DATA = Path(__file__).parent / "data"  # checksum lists and signatures exactly as the vendors published them
UBUNTU_CD_KEY = "843938DF228D22F7B3742BC0D94AA3F0EFE21092"
DEBIAN_CD_KEY = "DF9B9C49EAA9298432589D76DA87E80D6294BE9B"
REAL = [
    ("debian-11.2.0-amd64-dvd", "SHA256SUMS.sign", DEBIAN_CD_KEY, "debian-11.2.0-amd64-DVD-1.iso",
     "022370f066bc91b2cdac3837ff5fa9f3822c5afb2fc34f68084416079fe5a408"),
    ("ubuntu-20.04.1", "SHA256SUMS.gpg", UBUNTU_CD_KEY, "ubuntu-20.04.1-live-server-amd64.iso",
     "443511f6bf12402c12503733059269a2e10dec602916c0a75263e5d990f6bb93"),
]


@pytest.mark.parametrize(("folder", "sig", "key", "iso", "sha"), REAL, ids=[r[0] for r in REAL])
def test_real_vendor_checksum_list_verifies_with_the_shipped_key(
        folder: str, sig: str, key: str, iso: str, sha: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FACTORY_REQUIRE_SIGNATURE", "1")  # a missing key would fail, not warn
    monkeypatch.setattr(signing, "SYSTEM_KEYRINGS", tmp_path / "none")  # only isos/keys may help
    sums, signature = DATA / folder / "SHA256SUMS", str(DATA / folder / sig)
    text = cache.read_sums(str(sums), offline=True, signature=signature, key_fingerprint=key)
    assert cache.sums_lookup(text, iso) == sha
    tampered = tmp_path / "SHA256SUMS"
    tampered.write_bytes(sums.read_bytes().replace(sha[:8].encode(), b"00000000"))
    with pytest.raises(FactoryError, match="bad OpenPGP signature"):
        cache.read_sums(str(tampered), offline=True, signature=signature, key_fingerprint=key)
    other = UBUNTU_CD_KEY if key == DEBIAN_CD_KEY else DEBIAN_CD_KEY
    with pytest.raises(FactoryError, match="not the pinned"):  # a real vendor key, but not the one pinned
        cache.read_sums(str(sums), offline=True, signature=signature, key_fingerprint=other)
