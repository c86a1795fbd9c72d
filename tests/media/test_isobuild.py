"""`factory iso-build` as a user runs it: checksum refusal, bad input, determinism, and the output cache."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from fixtures.isos import ShapedIso, shaped_iso

from factory.cli import main
from factory.media import iso as iso_mod
from factory.media.catalog import load
from factory.media.preseed import PreseedVars, render
from factory.store import Store


@pytest.fixture(scope="module")
def ubuntu(artifact_cache: Path) -> ShapedIso:
    return shaped_iso("ubuntu", artifact_cache)


@pytest.fixture(scope="module")
def ubuntu_sha(ubuntu: ShapedIso) -> str:
    return hashlib.sha256(ubuntu.path.read_bytes()).hexdigest()


def cli(*argv: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(argv))
    return int(done.value.code or 0)


def build(src: Path, out: Path, checksum: str, *extra: str) -> int:
    return cli("iso-build", "ubuntu-24.04", "--iso", str(src), "--iso-checksum", checksum, "-o", str(out),
               "--var", "password=pw", *extra)


def test_checksum_mismatch_is_refused(ubuntu: ShapedIso, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out.iso"
    assert build(ubuntu.path, out, "sha256:" + "0" * 64) == 1
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "0" * 64 in err and "Traceback" not in err
    # without --iso-checksum the catalog's pinned sha256 applies, and this ISO is not the pinned one
    assert cli("iso-build", "ubuntu-24.04", "--iso", str(ubuntu.path), "-o", str(out), "--var", "password=pw") == 1
    assert "pinned sha256" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary file


@pytest.mark.parametrize(("argv", "message"), [
    (["iso-build", "ubuntu-24.4", "--iso", "x.iso"], "unknown release 'ubuntu-24.4'"),
    (["iso-build", "ubuntu-24.04", "--iso", "/nonexistent.iso", "--var", "password=pw"], "no such file"),
    (["iso-build", "ubuntu-24.04", "--var", "colour=blue"], "--var colour: unknown variable"),
    (["iso-build", "ubuntu-24.04", "--iso-checksum", "md5:abc", "--iso", "/etc/hostname", "--var", "password=pw"],
     "md5 digests are 32 hex digits"),
])
def test_bad_input_is_one_clear_message(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(*argv) == 1
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("error:") == 1


def test_not_an_iso(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.iso"
    junk.write_bytes(b"x" * 100_000)
    assert build(junk, tmp_path / "out.iso", "none") == 1
    assert "is not an ISO9660 image" in " ".join(capsys.readouterr().err.split())


def test_two_runs_are_bit_identical(ubuntu: ShapedIso, ubuntu_sha: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = tmp_path / "one.iso", tmp_path / "two.iso"
    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache1"))
    assert build(ubuntu.path, one, f"sha256:{ubuntu_sha}") == 0
    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache2"))  # no cache: a real second remaster
    assert build(ubuntu.path, two, f"sha256:{ubuntu_sha}") == 0
    assert one.read_bytes() == two.read_bytes()
    assert one.stat().st_ino != two.stat().st_ino
    three = tmp_path / "three.iso"
    assert build(ubuntu.path, three, f"sha256:{ubuntu_sha}", "--var", "hostname=other") == 0
    assert three.read_bytes() != one.read_bytes()  # and the inputs do matter


def test_cache_hit_is_near_instant(ubuntu: ShapedIso, ubuntu_sha: str, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    release = load("ubuntu-24.04")
    config = render(release.family, PreseedVars.from_pairs(["password=pw"]))
    args = release.family.kernel_args(ubuntu.volume_id)

    def timed(out: Path) -> tuple[float, iso_mod.RemasterReport | None]:
        start = time.perf_counter()
        report = iso_mod.remaster_cached(ubuntu.path, ubuntu_sha, out, config=config, kernel_args=args,
                                         boot_configs=release.boot_configs)
        return time.perf_counter() - start, report

    miss, first = timed(tmp_path / "a.iso")
    hit, second = timed(tmp_path / "b.iso")
    assert first is not None and second is None  # the second came from the cache
    assert (tmp_path / "a.iso").read_bytes() == (tmp_path / "b.iso").read_bytes()
    print(f"remaster {miss * 1000:.0f} ms, cache hit {hit * 1000:.1f} ms")
    assert hit < miss / 3  # relative: an absolute bound is a benchmark's job, and fails on a loaded CI host
    # an edited cache entry is not served
    (stored,) = Store().entries("remaster")
    entry = Store().folder(stored.key) / stored.name
    with entry.open("r+b") as fh:
        fh.seek(40000)
        fh.write(b"tampered")
    _, third = timed(tmp_path / "c.iso")
    assert third is not None
    assert (tmp_path / "c.iso").read_bytes()[40000:40008] != b"tampered"
    # and the CLI says where the output came from
    assert build(ubuntu.path, tmp_path / "d.iso", f"sha256:{ubuntu_sha}") == 0
    assert build(ubuntu.path, tmp_path / "e.iso", f"sha256:{ubuntu_sha}") == 0
    assert "from the cache" in " ".join(capsys.readouterr().err.split())


def test_ready_config_lands_byte_for_byte(ubuntu: ShapedIso, ubuntu_sha: str, tmp_path: Path) -> None:
    import subprocess

    ready = tmp_path / "my-user-data"
    text = render(load("ubuntu-24.04").family, PreseedVars.from_pairs(["password=pw", "hostname=mine"]))
    ready.write_bytes(text.files["nocloud/user-data"] + b"# my own edits\n")
    out = tmp_path / "out.iso"
    assert build(ubuntu.path, out, f"sha256:{ubuntu_sha}", "--preseed", str(ready)) == 0
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(out), "-extract", "/nocloud/user-data",
                    str(tmp_path / "got")], check=True, capture_output=True)
    assert (tmp_path / "got").read_bytes() == ready.read_bytes()


# --- a ready --preseed file carries its own login: no --var password is demanded, a --var given is still checked

READY = {"ubuntu": ("ubuntu-24.04", "nocloud/user-data"), "debian": ("debian-12", "preseed.cfg"),
         "rhel": ("rocky-9", "ks.cfg")}


def _ready_build(shape: str, artifact_cache: Path, tmp_path: Path, *extra: str) -> tuple[int, Path, Path]:
    """`iso-build --preseed` with the user's own file (factory's rendering plus an edit: a login of its own)."""
    source = shaped_iso(shape, artifact_cache)
    distro, media_path = READY[shape]
    ready = tmp_path / "mine.cfg"
    own = render(load(distro).family, PreseedVars.from_pairs(["password=their-own-pw", "hostname=mine"]))
    ready.write_bytes(own.files[media_path] + b"# my own edits\n")
    out = tmp_path / "out.iso"
    sha = hashlib.sha256(source.path.read_bytes()).hexdigest()
    code = cli("iso-build", distro, "--iso", str(source.path), "--iso-checksum", f"sha256:{sha}", "-o", str(out),
               "--preseed", str(ready), *extra)
    return code, ready, out


@pytest.mark.parametrize("shape", sorted(READY))
def test_ready_config_needs_no_password_var(shape: str, artifact_cache: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    code, ready, out = _ready_build(shape, artifact_cache, tmp_path)
    said = capsys.readouterr()
    assert code == 0, said.err
    assert "password" not in said.err and "password for" not in said.out  # nothing demanded, nothing generated
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(out), "-extract", f"/{READY[shape][1]}",
                    str(tmp_path / "got")], check=True, capture_output=True)
    assert (tmp_path / "got").read_bytes() == ready.read_bytes()


@pytest.mark.parametrize(("pairs", "message"), [
    (["hostname=not a host"], "hostname: 'not a host' is not a valid host name"),
    (["password_hash=$1$md5$abc"], "password_hash: must be a SHA-512 crypt hash"),
    (["password="], "password: must be a non-empty single line"),
    (["password=s3cret-given", "timezone=Mars/Olympus"], "timezone: 'Mars/Olympus' is not an IANA time zone"),
])
def test_ready_config_still_checks_the_vars_given(pairs: list[str], message: str, artifact_cache: Path,
                                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, out = _ready_build("ubuntu", artifact_cache, tmp_path, *(a for p in pairs for a in ("--var", p)))
    err = " ".join(capsys.readouterr().err.split())
    assert code == 1 and message in err and "Traceback" not in err
    assert "s3cret-given" not in err  # a password given is never echoed
    assert not out.exists()


# --- a bare `iso-build` (no password, no key): the invoking user's keys, else a password printed once ----------

def _user_data(iso: Path, tmp_path: Path) -> str:
    import subprocess

    got = tmp_path / "user-data"
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", "/nocloud/user-data", str(got)],
                   check=True, capture_output=True)
    return got.read_text()


def _bare(ubuntu: ShapedIso, sha: str, out: Path) -> int:
    return cli("iso-build", "ubuntu-24.04", "--iso", str(ubuntu.path), "--iso-checksum", f"sha256:{sha}",
               "-o", str(out))


@pytest.fixture
def no_login_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for name in ("SSH_AUTH_SOCK", "SUDO_USER"):
        monkeypatch.delenv(name, raising=False)
    return home


def _keygen(path: Path) -> str:
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "me@laptop", "-f", str(path)], check=True)
    return Path(f"{path}.pub").read_text().strip()


def test_bare_build_authorises_the_users_keys_with_the_password_locked(
        ubuntu: ShapedIso, ubuntu_sha: str, tmp_path: Path, no_login_sources: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    key = _keygen(no_login_sources / ".ssh" / "id_ed25519")
    assert _bare(ubuntu, ubuntu_sha, tmp_path / "out.iso") == 0
    out = capsys.readouterr()
    said = " ".join(out.err.split())
    assert f"authorised 1 SSH key(s) from {no_login_sources}/.ssh/id_ed25519.pub; the password is locked" in said
    assert "password for" not in out.out
    data = _user_data(tmp_path / "out.iso", tmp_path)
    assert key in data and "allow-pw: false" in data
    assert "password: '!$6$" in data.replace('"', "'")  # `passwd -l`'s form: no password login


def test_bare_build_prefers_the_agents_keys(ubuntu: ShapedIso, ubuntu_sha: str, tmp_path: Path,
                                           no_login_sources: Path, monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    import subprocess

    _keygen(no_login_sources / ".ssh" / "id_ed25519")  # on disk, but the agent comes first
    agent_key = _keygen(tmp_path / "agent_key")
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        subprocess.run(["ssh-add", "-q", str(tmp_path / "agent_key")], check=True, capture_output=True)
        assert _bare(ubuntu, ubuntu_sha, tmp_path / "out.iso") == 0
    finally:
        agent.terminate()
        agent.wait()
    assert "authorised 1 SSH key(s) from ssh-agent" in " ".join(capsys.readouterr().err.split())
    data = _user_data(tmp_path / "out.iso", tmp_path)
    assert agent_key.split()[1] in data and "me@laptop" in data


def test_bare_build_without_keys_prints_a_generated_password_once(
        ubuntu: ShapedIso, ubuntu_sha: str, tmp_path: Path, no_login_sources: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import re
    import subprocess

    assert _bare(ubuntu, ubuntu_sha, tmp_path / "out.iso") == 0
    out = capsys.readouterr()
    assert "no SSH key found (ssh-agent, ~/.ssh/*.pub): generated a password" in " ".join(out.err.split())
    (line,) = [ln for ln in out.out.splitlines() if ln.startswith("password for factory: ")]
    password = line.removeprefix("password for factory: ")
    assert len(password) >= 12 and password not in out.err
    iso = (tmp_path / "out.iso").read_bytes()
    assert password.encode() not in iso  # only its hash is on the media
    crypted = re.search(r"password: ['\"]?(\$6\$[^$]+\$[./0-9A-Za-z]{86})", _user_data(tmp_path / "out.iso",
                                                                                     tmp_path))
    assert crypted, "no SHA-512 crypt hash in user-data"
    salt = crypted[1].split("$")[2]
    again = subprocess.run(["openssl", "passwd", "-6", "-salt", salt, "-stdin"], input=password + "\n",
                           capture_output=True, text=True, check=True).stdout.strip()
    assert again == crypted[1]  # the printed password is the one that logs in
