"""Remastered vendor-shaped ISOs: real boots (SeaBIOS/OVMF, CD/disk) plus the consumers' view of the layout.

The ISOs are made with the real `factory iso-build` CLI from fixtures with real GRUB/ISOLINUX boot layouts.
Each boot stops as soon as the kernel prints its command line.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pycdlib
import pytest
from fixtures.isos import ShapedIso, shaped_iso
from fixtures.vm import boot_until, firmware_args

from factory.cli import main
from factory.errors import FactoryError
from factory.media import hybrid
from factory.media.iso import extract, remaster
from factory.media.preseed import PreseedVars, render

DISTRO = {"ubuntu": "ubuntu-24.04", "debian": "debian-12", "rhel": "rocky-9"}
EXPECTED_ARGS = {
    "ubuntu": "autoinstall ds=nocloud;s=/cdrom/nocloud/",
    "debian": "auto=true priority=critical preseed/file=/cdrom/preseed.cfg",
    "rhel": "inst.ks=hd:LABEL=Rocky-9-5-x86_64-dvd:/ks.cfg",
}
MEDIA_FILES = {"ubuntu": ("nocloud/user-data", "nocloud/meta-data"), "debian": ("preseed.cfg",),
               "rhel": ("ks.cfg",)}
BOOT_TIMEOUT = 240.0


@dataclass(frozen=True)
class Built:
    source: ShapedIso
    out: Path


def iso_build(source: Path, out: Path, distro: str, cache: Path, *extra: str) -> None:
    """Run the real CLI entry point (in-process: no interpreter start-up per shape), as a user would."""
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    argv = ["iso-build", distro, "--iso", str(source), "--iso-checksum", f"sha256:{sha}", "-o", str(out),
            "--var", "password=s3cret-pass", "--var", "hostname=unattended", *extra]
    with pytest.MonkeyPatch.context() as mp, pytest.raises(SystemExit) as done:
        mp.setenv("FACTORY_CACHE_DIR", str(cache))
        main(argv)
    assert done.value.code == 0, f"factory {' '.join(argv)} exited with {done.value.code}"


@pytest.fixture(scope="session")
def built(artifact_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Each shape remastered once per session through `factory iso-build`."""
    work = tmp_path_factory.mktemp("remastered")
    result: dict[str, Built] = {}
    for shape, distro in DISTRO.items():
        source = shaped_iso(shape, artifact_cache)
        out = work / f"{shape}-unattended.iso"
        # The vendors' entries say `quiet`, which hides the kernel's "Command line:" line: ignore_loglevel (an
        # extra --kernel-args) shows it again.
        iso_build(source.path, out, distro, work / "cache", "--kernel-args", "ignore_loglevel")
        result[shape] = Built(source, out)
    return result


def _drive(iso: Path, media: str, workdir: Path) -> list[str]:
    if media == "cd":
        return ["-drive", f"file={iso},media=cdrom,if=ide,readonly=on", "-boot", "d"]
    return ["-drive", f"file={iso},format=raw,if=ide,snapshot=on", "-boot", "c"]


def _without_el_torito(iso: Path, dest: Path) -> Path:
    """A copy whose El Torito boot record is gone, so UEFI can only boot it through the MBR/GPT ESP (like a
    real USB stick: OVMF would otherwise fall back to El Torito even on a disk)."""
    shutil.copyfile(iso, dest)
    with dest.open("r+b") as fh:
        fh.seek(17 * 2048 + 7)
        assert fh.read(23) == b"EL TORITO SPECIFICATION"
        fh.seek(17 * 2048 + 7)
        fh.write(b"NOT TORITO SPECIFICATIO")
    return dest


# Ubuntu: the full matrix. Debian/RHEL: one CD and one disk boot each, across both firmwares.
MATRIX = [("ubuntu", "bios", "cd"), ("ubuntu", "uefi", "cd"), ("ubuntu", "bios", "disk"), ("ubuntu", "uefi", "disk"),
          ("debian", "bios", "cd"), ("debian", "uefi", "disk"), ("rhel", "uefi", "cd"), ("rhel", "bios", "disk")]


@pytest.mark.vm
@pytest.mark.parametrize(("shape", "firmware", "media"), MATRIX, ids=["-".join(m) for m in MATRIX])
def test_boots_unattended(built: dict[str, Built], shape: str, firmware: str, media: str, tmp_path: Path) -> None:
    iso = built[shape].out
    if firmware == "uefi" and media == "disk":
        iso = _without_el_torito(iso, tmp_path / "usb.img")
    run = boot_until(firmware_args(firmware, tmp_path) + _drive(iso, media, tmp_path),
                     r"Command line: .*\n", BOOT_TIMEOUT, tmp_path)
    assert run.matched, f"no kernel command line within {BOOT_TIMEOUT:.0f}s; serial tail:\n{run.log[-1500:]}"
    cmdline = re.search(r"Command line: (.*)", run.log).group(1)  # type: ignore[union-attr]
    assert EXPECTED_ARGS[shape] in cmdline
    assert "console=ttyS0,115200" in cmdline and "ignore_loglevel" in cmdline  # own + extra arguments kept
    assert "rd.live.check" not in cmdline and "rescue" not in cmdline  # the default is a plain install entry
    # GRUB shows its countdown on the serial console: the menu waited about 1 s, not the vendor's 30/60 s.
    countdowns = [int(s) for s in re.findall(r"automatically in (\d+)s", run.log)]
    if shape == "ubuntu" or firmware == "uefi":  # GRUB menus (ISOLINUX's vesamenu draws on the screen only;
        assert countdowns and max(countdowns) <= 1, countdowns  # Debian's `timeout 0` would wait forever there)
    print(f"{shape} {firmware}-{media}: kernel command line after {run.seconds:.1f}s")


def _xorriso_report(iso: Path) -> str:
    return subprocess.run(["xorriso", "-indev", str(iso), "-report_el_torito", "plain", "-report_system_area",
                           "plain"], capture_output=True, text=True, check=True).stdout


def _sgdisk_problems(iso: Path) -> str:
    out = subprocess.run(["sgdisk", "-v", str(iso)], capture_output=True, text=True).stdout
    return re.sub(r"Caution: Partition \d+ doesn't end on a 8-sector boundary.*?tools\.\n", "", out, flags=re.S)


def test_ubuntu_hybrid_layout_is_restored(built: dict[str, Built]) -> None:
    out = built["ubuntu"].out
    report = _xorriso_report(out)
    assert "System area summary: MBR protective-msdos-label grub2-mbr cyl-align-off GPT" in report
    assert re.search(r"El Torito img opts :\s+1\s+boot-info-table grub2-boot-info", report)
    assert re.search(r"GPT partname local :\s+2\s+Appended2", report)
    # the UEFI El Torito entry boots the appended ESP again (xorriso calls it hidden: it is outside the tree)
    esp = int(re.search(r"GPT start and size :\s+2\s+(\d+)", report).group(1))  # type: ignore[union-attr]
    efi_lba = int(re.search(r"El Torito boot img :\s+2\s+UEFI.*?(\d+)\s*$", report, re.M).group(1))  # type: ignore[union-attr]
    assert efi_lba * 4 == esp
    assert "No problems found" in subprocess.run(["sgdisk", "-v", str(out)], capture_output=True,
                                                 text=True).stdout
    with built["ubuntu"].source.path.open("rb") as a, out.open("rb") as b:
        old, new = hybrid.read_gpt(a), hybrid.read_gpt(b)
        assert old is not None and new is not None
        a.seek(old.entries[1].first * 512)
        b.seek(new.entries[1].first * 512)
        assert a.read(8192 * 512) == b.read(8192 * 512)  # the ESP itself is carried over byte for byte


def test_isohybrid_layouts_are_restored(built: dict[str, Built]) -> None:
    for shape, extra in (("debian", "GPT APM"), ("rhel", "GPT")):
        out = built[shape].out
        report = _xorriso_report(out)
        assert f"System area summary: MBR isohybrid cyl-align-off {extra}" in report or \
            f"System area summary: MBR isohybrid cyl-align-on {extra}" in report, report
        efi = "/boot/grub/efi.img" if shape == "debian" else "/images/efiboot.img"
        assert re.search(rf"MBR partition path :\s+2\s+{efi}", report)  # MBR's EFI partition = the moved image
        assert re.search(rf"GPT partition path :\s+2\s+{efi}", report)
        if shape == "debian":
            assert re.search(rf"APM partition path :\s+1\s+{efi}", report)
        # xorriso's isohybrid GPT overlaps by design: the rewrite has the same findings as the vendor image
        assert _sgdisk_problems(out).count("Problem") == _sgdisk_problems(built[shape].source.path).count("Problem")


def _grub2_image_checks(iso: Path) -> None:
    with iso.open("rb") as fh:
        bios = next(e for e in hybrid.read_catalog(fh) if not e.is_efi)
        fh.seek(0x1B0)
        assert struct.unpack("<Q", fh.read(8))[0] == bios.load_rba * 4 + 4  # MBR -> boot image
        fh.seek(bios.load_rba * 2048)
        head = fh.read(64)
        length = struct.unpack_from("<I", head, 16)[0]
        fh.seek(bios.load_rba * 2048)
        image = fh.read(length)
    assert struct.unpack_from("<Q", image, 2548)[0] == bios.load_rba * 4 + 5
    body = image[64:] + bytes(-(length - 64) % 4)
    assert struct.unpack_from("<I", image, 20)[0] == sum(struct.unpack(f"<{len(body) // 4}I", body)) & 0xFFFFFFFF


def test_grub2_boot_info_and_boot_info_table(built: dict[str, Built]) -> None:
    _grub2_image_checks(built["ubuntu"].source.path)  # the check itself agrees with xorriso's original
    _grub2_image_checks(built["ubuntu"].out)


def _extract(iso: Path, path: str, dest: Path) -> bytes:
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(dest)],
                   check=True, capture_output=True)
    return dest.read_bytes()


@pytest.mark.parametrize("shape", list(DISTRO))
def test_media_content(built: dict[str, Built], shape: str, tmp_path: Path) -> None:
    src, out = built[shape].source, built[shape].out
    label = subprocess.run(["blkid", "-p", "-o", "value", "-s", "LABEL", str(out)], capture_output=True, text=True)
    assert label.stdout.strip() == src.volume_id  # what udev/casper/dracut (hd:LABEL=) look the media up by
    for path in MEDIA_FILES[shape]:
        assert _extract(out, "/" + path, tmp_path / path.replace("/", "_"))
    if shape != "rhel":
        assert _extract(out, "/.disk/info", tmp_path / "info") == _extract(src.path, "/.disk/info", tmp_path / "i0")
        sums = _extract(out, "/md5sum.txt", tmp_path / "md5sum.txt").decode()
        for changed in (*MEDIA_FILES[shape], src.boot_configs[-1]):
            digest = hashlib.md5(_extract(out, "/" + changed, tmp_path / "f")).hexdigest()
            assert f"{digest}  ./{changed}\n" in sums
    # the kernel and initrd are untouched and can be pulled out for a direct -kernel boot
    files = extract(out, [src.kernel, src.initrd], tmp_path / "direct")
    assert [f.read_bytes() for f in files] == [_extract(src.path, p, tmp_path / "orig") for p in
                                               (src.kernel, src.initrd)]


def test_rhel_efi_image_config_is_patched(built: dict[str, Built], tmp_path: Path) -> None:
    img = tmp_path / "efiboot.img"
    _extract(built["rhel"].out, "/images/efiboot.img", img)
    text = subprocess.run(["mtype", "-i", str(img), "::/EFI/BOOT/grub.cfg"], capture_output=True, text=True,
                          check=True).stdout
    assert EXPECTED_ARGS["rhel"] in text and "set timeout=1" in text and 'set default="0"' in text


def test_remaster_api_refuses_media_without_install_entries(tmp_path: Path) -> None:
    from factory.media.seed import make_iso

    plain = make_iso({"boot/grub/grub.cfg": b"menuentry 'x' { chainloader +1 }\n"}, tmp_path / "plain.iso")
    config = render(_family("ubuntu"), PreseedVars.from_pairs(["password=x"]))
    with pytest.raises(FactoryError, match="no install entry"):
        remaster(plain, tmp_path / "out.iso", config=config, kernel_args="autoinstall")
    assert not (tmp_path / "out.iso").exists()
    (tmp_path / "junk.iso").write_bytes(b"\0" * 70000)
    with pytest.raises(FactoryError, match="not an ISO9660 image"):
        remaster(tmp_path / "junk.iso", tmp_path / "out.iso", config=config, kernel_args="autoinstall")


def _family(shape: str):  # type: ignore[no-untyped-def]
    from factory.media.catalog import load

    return load(DISTRO[shape]).family


def test_output_reopens_in_pycdlib(built: dict[str, Built]) -> None:
    for b in built.values():
        iso = pycdlib.PyCdlib()
        iso.open(str(b.out))
        iso.close()


def test_remastering_a_remastered_iso_keeps_the_layout(built: dict[str, Built], tmp_path: Path) -> None:
    """The restored system area is itself a valid source: a second pass finds and keeps everything again."""
    again = tmp_path / "again.iso"
    config = render(_family("ubuntu"), PreseedVars.from_pairs(["password=x", "hostname=second"]))
    remaster(built["ubuntu"].out, again, config=config, kernel_args=EXPECTED_ARGS["ubuntu"])
    report = _xorriso_report(again)
    assert "grub2-mbr cyl-align-off GPT" in report and re.search(r"GPT partname local :\s+2\s+Appended2", report)
    assert "No problems found" in subprocess.run(["sgdisk", "-v", str(again)], capture_output=True,
                                                 text=True).stdout
    _grub2_image_checks(again)
    text = _extract(again, "/boot/grub/grub.cfg", tmp_path / "grub.cfg").decode()
    assert text.count("autoinstall") == text.count("ds=nocloud") == 2  # arguments are not added twice


def test_truncated_source_is_one_clear_error(built: dict[str, Built], tmp_path: Path) -> None:
    cut = tmp_path / "cut.iso"
    with built["ubuntu"].source.path.open("rb") as fh:
        cut.write_bytes(fh.read(built["ubuntu"].source.path.stat().st_size - 3 * 2**20))  # into the ESP
    config = render(_family("ubuntu"), PreseedVars.from_pairs(["password=x"]))
    with pytest.raises(FactoryError, match="ends inside its GPT partition 2"):
        remaster(cut, tmp_path / "out.iso", config=config, kernel_args=EXPECTED_ARGS["ubuntu"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.iso"]  # no half-written output or work dir


def test_interrupted_write_leaves_nothing_behind(built: dict[str, Built], tmp_path: Path) -> None:
    """Ctrl-C in the middle of the write: no output, no .part file, no work folder."""
    config = render(_family("ubuntu"), PreseedVars.from_pairs(["password=x"]))
    seen: list[int] = []

    def interrupt(n: int, _total: int) -> None:
        seen.append(n)
        if sum(seen) > 4 << 20:
            raise KeyboardInterrupt

    out = tmp_path / "out" / "interrupted.iso"
    with pytest.raises(KeyboardInterrupt):
        remaster(built["ubuntu"].source.path, out, config=config, kernel_args="autoinstall", progress=interrupt)
    assert sum(seen) > 4 << 20  # it really was stopped mid-write
    assert list(out.parent.iterdir()) == []
