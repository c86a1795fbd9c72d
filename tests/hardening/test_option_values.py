"""Option values Packer's plugin refuses are refused by `validate` and `build` alike, at the option's line.

Ranges (memory, cpus, SMP topology, every port, port-range order, timeouts) and iso_checksum's syntax are declared
in factory/schema (opt(minimum=, maximum=, check=), ORDERED); these tables and the hypothesis tests hold the
declarations to what a user sees: exit 1, one message naming file:line:column, the option and a hint.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory.errors import FactoryError
from factory.media import cache
from factory.schema.values import CheckKind, Checksum
from hardening.harness import assert_user_error, run_cli, template

HEX = "0123456789abcdef"

# (case, line added to the qemu source (line 5 of the file), expected pieces of the message)
RANGES: list[tuple[str, str, list[str]]] = [
    ("negative memory", "memory = -512", ["memory", "'-512'", "from 10 to"]),
    ("memory too small", "memory = 4", ["memory", "from 10 to"]),
    ("memory too large", "memory = 99999999999", ["memory", "to 16777216"]),
    ("no cpus", "cpus = 0", ["cpus", "from 1 to 1024"]),
    ("negative cpus", "cpus = -2", ["cpus", "from 1 to 1024"]),
    ("too many cpus", "cpus = 5000", ["cpus", "from 1 to 1024"]),
    ("negative sockets", "sockets = -1", ["sockets", "from 0 to 1024"]),
    ("negative cores", "cores = -1", ["cores", "from 0 to 1024"]),
    ("negative threads", "threads = -4", ["threads", "from 0 to 1024"]),
    ("ssh_port above 65535", "ssh_port = 70000", ["ssh_port", "'70000'", "from 1 to 65535"]),
    ("ssh_port zero", "ssh_port = 0", ["ssh_port", "from 1 to 65535"]),
    ("negative ssh_port", "ssh_port = -22", ["ssh_port", "from 1 to 65535"]),
    ("host_port_min zero", "host_port_min = 0", ["host_port_min", "from 1 to 65535"]),
    ("host_port_max too big", "host_port_max = 65536", ["host_port_max", "from 1 to 65535"]),
    ("http_port_min negative", "http_port_min = -1", ["http_port_min", "from 1 to 65535"]),
    ("http_port_max too big", "http_port_max = 100000", ["http_port_max", "from 1 to 65535"]),
    ("vnc_port_min below 5900", "vnc_port_min = 80", ["vnc_port_min", "from 5900 to 65535"]),
    ("vnc_port_max too big", "vnc_port_max = 70000", ["vnc_port_max", "from 5900 to 65535"]),
    ("bastion port", "ssh_bastion_port = 0", ["ssh_bastion_port", "from 1 to 65535"]),
    ("proxy port", "ssh_proxy_port = 99999", ["ssh_proxy_port", "from 1 to 65535"]),
    ("winrm port", "winrm_port = -1", ["winrm_port", "from 1 to 65535"]),
    ("http range reversed", "http_port_max = 7000", ["http_port_min 8000 is above http_port_max 7000"]),
    ("host range reversed", "host_port_min = 5000", ["host_port_min 5000 is above host_port_max 4444"]),
    ("vnc range reversed", "vnc_port_max = 5901\n  vnc_port_min = 5950",
     ["vnc_port_min 5950 is above vnc_port_max 5901"]),
    ("negative ssh_timeout", 'ssh_timeout = "-5m"', ["ssh_timeout", "'-5m'", "at least 0s"]),
    ("negative shutdown_timeout", 'shutdown_timeout = "-1s"', ["shutdown_timeout", "at least 0s"]),
    ("negative winrm_timeout", 'winrm_timeout = "-1h"', ["winrm_timeout", "at least 0s"]),
    ("negative read/write timeout", 'ssh_read_write_timeout = "-1s"', ["ssh_read_write_timeout", "at least 0s"]),
    ("negative key interval", 'boot_key_interval = "-10ms"', ["boot_key_interval", "at least 0s"]),
    ("negative keygroup interval", 'boot_keygroup_interval = "-1s"', ["boot_keygroup_interval", "at least 0s"]),
    ("negative pause", 'pause_before_connecting = "-1s"', ["pause_before_connecting", "at least 0s"]),
    ("zero handshakes", "ssh_handshake_attempts = 0", ["ssh_handshake_attempts", "at least 1"]),
    ("zero disk", 'disk_size = "0"', ["disk_size", "larger than zero"]),
    ("negative disk", "disk_size = -1", ["disk_size"]),
    ("absurd disk", 'disk_size = "' + "9" * 400 + 'G"', ["disk_size", "larger than 8 EiB"]),
    ("zero extra disk", 'disk_additional_size = ["1G", "0"]', ["disk_additional_size", "larger than zero"]),
    ("enum typo", 'disk_cache = "writebak"', ["disk_cache", "did you mean 'writeback'?"]),
    ("enum case", 'format = "QCOW2"', ["format", "allowed: qcow2, raw"]),
    ("bad communicator", 'communicator = "telnet"', ["communicator", "allowed: ssh, winrm, none"]),
]

# (case, iso_checksum value, expected pieces of the message)
CHECKSUMS: list[tuple[str, str, list[str]]] = [
    ("not hex", "sha256:xyz", ["'sha256:xyz'", "sha256 digests are 64 hex digits", "'xyz' is not hex"]),
    ("short sha256", "sha256:" + "a" * 63, ["sha256 digests are 64 hex digits; got 63"]),
    ("long md5", "md5:" + "a" * 33, ["md5 digests are 32 hex digits; got 33"]),
    ("sha1 with a g", "sha1:" + "g" * 40, ["sha1 digests are 40 hex digits", "is not hex"]),
    ("sha512 empty", "sha512:", ["sha512 digests are 128 hex digits; got 0"]),
    ("unknown algorithm", "sha384:" + "a" * 96, ["unknown algorithm 'sha384'", "md5, sha1, sha256, sha512"]),
    ("bare hex of no length", "abc123", ["6 hex digits match no algorithm"]),
    ("bare word", "latest", ["neither TYPE:VALUE, hex digits nor none"]),
    ("file without list", "file:", ["file: names no checksum list"]),
    ("file with blanks", "file:   ", ["file: names no checksum list"]),
]

GOOD_CHECKSUMS = ["none", "NONE", "sha256:" + "A" * 64, "a" * 32, "b" * 40, "c" * 64, "d" * 128,
                  "md5:" + "0" * 32, "sha1:" + "1" * 40, "sha512:" + "f" * 128, "file:./SHA256SUMS",
                  "file:https://example.org/SHA256SUMS", "file:///srv/isos/SHA256SUMS"]


def _write(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(f"  {line}\n"))
    return path


@pytest.mark.parametrize("command", ["validate", "build"])
@pytest.mark.parametrize(("case", "line", "expected"), RANGES, ids=[c[0] for c in RANGES])
def test_out_of_range_value_is_refused_at_its_line(tmp_path: Path, command: str, case: str, line: str,
                                                   expected: list[str]) -> None:
    path = _write(tmp_path, line)
    res = run_cli([command, str(path)], cwd=tmp_path)
    assert_user_error(res, f"{path}:", *expected)
    assert f"{path}:5:3" in res.err or f"{path}:6:3" in res.err, res.err
    assert res.err.count("error:") == 1, res.err
    assert "hint:" in res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pkr.hcl"], "a refused build left files behind"


@pytest.mark.parametrize("command", ["validate", "build"])
@pytest.mark.parametrize(("case", "value", "expected"), CHECKSUMS, ids=[c[0] for c in CHECKSUMS])
def test_bad_iso_checksum_is_refused_at_its_line(tmp_path: Path, command: str, case: str, value: str,
                                                 expected: list[str]) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template().replace('"none"', f'"{value}"'))
    res = run_cli([command, str(path)], cwd=tmp_path)
    assert_user_error(res, f"{path}:3:3", "source.qemu.a.iso_checksum", *expected)
    assert "hint: write sha256:HEX" in res.err or "algorithms:" in res.err


@pytest.mark.parametrize("value", GOOD_CHECKSUMS)
def test_valid_iso_checksums_validate(tmp_path: Path, value: str) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template().replace('"none"', f'"{value}"'))
    res = run_cli(["validate", str(path)])
    assert res.code == 0, str(res)


@pytest.mark.parametrize("line", ["sockets = 0", "cpus = 1024", "memory = 10", "ssh_port = 65535",
                                  'boot_wait = "-1s"', 'ssh_keep_alive_interval = "-1s"', "http_port_max = 8000",
                                  "vnc_port_min = 6000"])
def test_edge_values_are_accepted(tmp_path: Path, line: str) -> None:
    res = run_cli(["validate", str(_write(tmp_path, line))])
    assert res.code == 0, str(res)


def test_media_cache_uses_the_same_checksum_parser() -> None:
    """One parser: what validate refuses the cache refuses with the same words, and the forms it accepts agree."""
    assert cache.Checksum is Checksum
    with pytest.raises(FactoryError, match="sha256 digests are 64 hex digits"):
        cache.verify(Path("/nonexistent"), "sha256:xyz")


# -- fuzzing ---------------------------------------------------------------------------------------------------
def _fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


PORTS = {"ssh_port": (1, 65535), "host_port_min": (1, 4444), "http_port_max": (8000, 65535),
         "vnc_port_min": (5900, 6000), "cpus": (1, 1024), "memory": (10, 16 * 1024 * 1024)}


@_fuzz(25)
@given(st.sampled_from(sorted(PORTS)), st.integers(min_value=-10**6, max_value=10**8))
def test_fuzz_numeric_options_are_valid_exactly_in_range(tmp_path: Path, option: str, value: int) -> None:
    low, high = PORTS[option]
    res = run_cli(["validate", str(_write(tmp_path, f"{option} = {value}"))])
    if low <= value <= high:
        assert res.code == 0, str(res)
    else:
        assert_user_error(res, option, ":5:3")


@_fuzz(60)
@given(st.one_of(
    st.text(max_size=80),
    st.builds(lambda a, h: f"{a}:{h}", st.sampled_from(["md5", "sha1", "sha256", "sha512", "file", "SHA256", "x"]),
              st.text(alphabet=HEX + "xyzG:/. ", max_size=140)),
    st.text(alphabet=HEX, max_size=140),
))
def test_fuzz_checksum_parser_accepts_exactly_the_documented_forms(spec: str) -> None:
    """Any text either parses to a digest of the right length for its algorithm, a file list, none, or is one
    FactoryError; never another exception."""
    try:
        parsed = Checksum.parse(spec)
    except FactoryError as exc:
        assert exc.message.startswith("checksum ") and exc.hint, exc.message
        return
    if parsed.kind is CheckKind.NONE:
        assert spec.strip().lower() == "none"
    elif parsed.kind is CheckKind.FILE:
        assert spec.strip().lower().startswith("file:") and parsed.value
    else:
        assert len(parsed.value) == {"md5": 32, "sha1": 40, "sha256": 64, "sha512": 128}[parsed.algo]
        assert set(parsed.value) <= set(HEX)


# -- the other builders declare the same rules ----------------------------------------------------------------
LIBVIRT = ('source "libvirt" "a" {\n  libvirt_uri = "qemu:///session"\n  %s\n  volume {\n    name = "d"\n'
           '    capacity = "1G"\n  }\n}\nbuild {\n  sources = ["source.libvirt.a"]\n}\n')


@pytest.mark.parametrize(("source", "line", "expected"), [
    ("virtualbox-iso", "memory = -1", ["memory"]),
    ("virtualbox-iso", "cpus = 0", ["cpus"]),
    ("virtualbox-iso", "ssh_port = 70000", ["ssh_port", "from 1 to 65535"]),
    ("virtualbox-iso", "vrdp_port_max = 5000", ["vrdp_port_min 5900 is above vrdp_port_max 5000"]),
    ("virtualbox-iso", "http_port_min = 9500", ["http_port_min 9500 is above http_port_max 9000"]),
    ("virtualbox-iso", 'boot_keygroup_interval = "-1s"', ["boot_keygroup_interval", "at least 0s"]),
    ("virtualbox-iso", 'iso_checksum = "sha256:xyz"', ["sha256 digests are 64 hex digits"]),
    ("libvirt", "memory = 0", ["memory", "from 10 to"]),
    ("libvirt", "vcpu = -1", ["vcpu", "from 1 to 1024"]),
    ("libvirt", "http_port_max = 10", ["http_port_min 8000 is above http_port_max 10"]),
    ("libvirt", 'output_directory = ".."', ["output_directory '..'", "one of its parents"]),
])
def test_other_builders_refuse_the_same_values(tmp_path: Path, source: str, line: str, expected: list[str]) -> None:
    path = tmp_path / "t.pkr.hcl"
    if source == "libvirt":
        path.write_text(LIBVIRT % line)
        at = f"{path}:3:3"
    else:
        text = template(f"  {line}\n").replace('source "qemu"', f'source "{source}"')
        if line.startswith("iso_checksum"):
            text = text.replace('  iso_checksum = "none"\n', "")
        path.write_text(text.replace("source.qemu.a", f"source.{source}.a"))
        at = f"{path}:4:3" if line.startswith("iso_checksum") else f"{path}:5:3"
    res = run_cli(["validate", str(path)])
    assert_user_error(res, at, *expected)
    assert res.err.count("error:") == 1, res.err


@pytest.mark.parametrize("command", ["validate", "build"])
@pytest.mark.parametrize("url_line", ['iso_url = "x.iso"', 'iso_urls = ["x.iso", "y.iso"]'])
def test_a_download_without_iso_checksum_is_refused(tmp_path: Path, command: str, url_line: str) -> None:
    """Packer's ISOConfig refuses an image it cannot verify unless told `iso_checksum = "none"`."""
    path = tmp_path / "t.pkr.hcl"
    text = template()
    lines = [ln for ln in text.splitlines(keepends=True) if "iso_checksum" not in ln and "iso_url" not in ln]
    lines.insert(1, f"  {url_line}\n")
    path.write_text("".join(lines))
    res = run_cli([command, str(path)], cwd=tmp_path)
    option = url_line.split(" ")[0]
    assert_user_error(res, f"{path}:2:3", f"{option} needs iso_checksum", 'or to "none" to skip the check')
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pkr.hcl"], "a refused build left files behind"


# -- the post-processors that write descriptors and archives declare the limits `factory export` applies --------
# (case, post-processor type, its option line (line 9 of the file), expected pieces of the message)
POST_RANGES: list[tuple[str, str, str, list[str]]] = [
    ("ova cpus 5000", "ova", "cpus = 5000", ["cpus", "'5000'", "from 1 to 1024"]),
    ("ova no cpus", "ova", "cpus = 0", ["cpus", "from 1 to 1024"]),
    ("ova negative cpus", "ova", "cpus = -2", ["cpus", "from 1 to 1024"]),
    ("ova negative memory", "ova", "memory = -512", ["memory", "'-512'", "from 1 to 16777216"]),
    ("ova absurd memory", "ova", "memory = 99999999999999999999", ["memory", "from 1 to 16777216"]),
    ("ova hardware_version 0", "ova", "hardware_version = 0", ["hardware_version", "at least 1"]),
    ("ova negative hardware_version", "ova", "hardware_version = -14", ["hardware_version", "at least 1"]),
    ("ova compression_level 0", "ova", "compression_level = 0", ["compression_level", "from 1 to 9"]),
    ("ova absurd compression_level", "ova", "compression_level = 99999999999999999999",
     ["compression_level", "'99999999999999999999'", "from 1 to 9"]),
    ("export cpus", "export", "cpus = 5000", ["cpus", "from 1 to 1024"]),
    ("vmdk compression_level", "vmdk", "compression_level = 10", ["compression_level", "from 1 to 9"]),
    ("vmdk hardware_version", "vmdk", "hardware_version = -1", ["hardware_version", "at least 1"]),
    ("vhd memory", "vhd", "memory = 0", ["memory", "from 1 to 16777216"]),
    ("vhdx cpus", "vhdx", "cpus = 99999999999999999999", ["cpus", "from 1 to 1024"]),
    ("gce compression_level", "gce", "compression_level = -1", ["compression_level", "from 1 to 9"]),
    ("vagrant compression_level 10", "vagrant", "compression_level = 10", ["compression_level", "from 0 to 9"]),
    ("vagrant negative compression_level", "vagrant", "compression_level = -1",
     ["compression_level", "from 0 to 9"]),
    ("compress compression_level 23", "compress", "compression_level = 23", ["compression_level", "from 0 to 22"]),
    ("compress negative compression_level", "compress", "compression_level = -5",
     ["compression_level", "from 0 to 22"]),
]


def _post(tmp_path: Path, kind: str, line: str) -> Path:
    path = tmp_path / "t.pkr.hcl"
    extra = '    format = "ova"\n' if kind == "export" else ""  # after the option: it stays on line 9
    path.write_text(template(build_lines=f'  post-processor "{kind}" {{\n    {line}\n{extra}  }}\n'))
    return path


@pytest.mark.parametrize("command", ["validate", "build"])
@pytest.mark.parametrize(("case", "kind", "line", "expected"), POST_RANGES, ids=[c[0] for c in POST_RANGES])
def test_post_processor_option_out_of_range_is_refused_at_its_line(tmp_path: Path, command: str, case: str,
                                                                   kind: str, line: str,
                                                                   expected: list[str]) -> None:
    path = _post(tmp_path, kind, line)
    res = run_cli([command, str(path)], cwd=tmp_path)
    option = line.split(" ")[0]
    assert_user_error(res, f"{path}:9:5 (build.post-processor[0].{option})", *expected)
    assert res.err.count("error:") == 1 and "hint:" in res.err, res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pkr.hcl"], "a refused build left files behind"


@pytest.mark.parametrize(("kind", "line"), [
    ("ova", "cpus = 1"), ("ova", "cpus = 1024"), ("ova", "memory = 1"), ("ova", "memory = 16777216"),
    ("ova", "hardware_version = 1"), ("ova", "hardware_version = 21"), ("ova", "compression_level = 1"),
    ("ova", "compression_level = 9"), ("export", "cpus = 8"), ("vagrant", "compression_level = 0"),
    ("vagrant", "compression_level = 9"), ("compress", "compression_level = 0"),
    ("compress", 'compression_level = 22\n    output = "out.tar.zst"'), ("compress", 'format = "tgz"'),
    ("compress", 'compression_level = 15\n    output = "out.{{.BuildName}}"'),  # the run expands, then checks
    ("compress", 'compression_level = 15\n    format = "tar"'),                 # a bare tar has no level
])
def test_post_processor_edge_values_are_accepted(tmp_path: Path, kind: str, line: str) -> None:
    res = run_cli(["validate", str(_post(tmp_path, kind, line))])
    assert res.code == 0, str(res)


# -- compress: the level suits the chosen codec, the format is one compress writes: at validate, not after the build
COMPRESS_CASES: list[tuple[str, str, list[str]]] = [
    ("gzip level 15", "compression_level = 15", ["compression_level 15 is out of range for tar.gz (0-9)"]),
    ("xz level 10", 'compression_level = 10\n    output = "disk.xz"', ["out of range for xz (0-9)"]),
    ("zstd level 0", 'compression_level = 0\n    format = "zst"', ["out of range for zst (1-22)"]),
    ("unknown format", 'format = "rar"', ["unknown compression format 'rar'", "tar.gz"]),
    ("no extension", 'output = "disk.img"', ["cannot tell the compression format of 'disk.img'", "`format`"]),
]


@pytest.mark.parametrize("command", ["validate", "build"])
@pytest.mark.parametrize(("case", "line", "expected"), COMPRESS_CASES, ids=[c[0] for c in COMPRESS_CASES])
def test_compress_format_and_codec_level_are_checked_before_the_build(tmp_path: Path, command: str, case: str,
                                                                      line: str, expected: list[str]) -> None:
    path = _post(tmp_path, "compress", line)
    res = run_cli([command, str(path)], cwd=tmp_path)
    option = line.split(" ")[0]
    assert_user_error(res, f"{path}:9:5 (build.post-processor[0].{option})", *expected)
    assert res.err.count("error:") == 1 and "hint:" in res.err, res.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pkr.hcl"], "a refused build left files behind"


# -- \u escapes: a surrogate pair (as JSON writes U+10000 and up) is one character; what names none is a located error
@pytest.mark.parametrize(("value", "expected"), [
    ('"a\\ud800b"', ["invalid escape \\ud800: a lone UTF-16 surrogate"]),
    ('"\\U00110000"', ["invalid escape \\U00110000: past U+10FFFF"]),
    ('"\\udc00\\ud800"', ["invalid escape \\udc00"]),                       # a pair in the wrong order
])
def test_an_escape_naming_no_character_is_refused_at_its_place(tmp_path: Path, value: str,
                                                              expected: list[str]) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(source_lines=f"  vm_name = {value}\n"))
    res = run_cli(["validate", str(path)], cwd=tmp_path)
    assert_user_error(res, f"{path}:5:", *expected)


def test_a_surrogate_pair_escape_is_the_character_it_encodes(tmp_path: Path) -> None:
    """Found by the option fuzzer: floppy_label = "\\ud800\\udc00" was an internal UnicodeEncodeError."""
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(source_lines='  floppy_label = "\\ud800\\udc00"\n'))
    res = run_cli(["validate", str(path)], cwd=tmp_path)
    assert_user_error(res, f"{path}:5:3", "floppy_label '\U00010000' is not a valid FAT volume label")
