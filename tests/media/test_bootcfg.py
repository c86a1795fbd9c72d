"""Boot menu rewriting on the vendors' real menu shapes (Ubuntu, Debian, RHEL; GRUB and ISOLINUX)."""

from __future__ import annotations

import re

import pytest
from fixtures.isos import (
    DEBIAN_GRUB,
    DEBIAN_ISOLINUX,
    RHEL_GRUB,
    RHEL_ISOLINUX,
    UBUNTU_GRUB,
    UBUNTU_LOOPBACK,
)

from factory.media.bootcfg import grub_escape, patch, patch_grub, patch_isolinux
from factory.media.iso import update_sums

SUBIQUITY = "autoinstall ds=nocloud;s=/cdrom/nocloud/"
DEBIAN = "auto=true priority=critical preseed/file=/cdrom/preseed.cfg"
KICKSTART = "inst.ks=hd:LABEL=Rocky-9-5-x86_64-dvd:/ks.cfg"


def _linux_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if re.match(r"\s*linux(efi)?\s", line)]


def test_ubuntu_grub_every_install_entry_gets_escaped_args_before_dashes(golden) -> None:  # type: ignore[no-untyped-def]
    result = patch("boot/grub/grub.cfg", UBUNTU_GRUB, SUBIQUITY)
    assert result.entries == 2
    for line in _linux_lines(result.text):
        # existing args kept, ours before `---`, `;` escaped so grub does not split the command
        assert line.endswith("console=ttyS0,115200  autoinstall ds=nocloud\\;s=/cdrom/nocloud/ ---")
    assert "set timeout=1\n" in result.text and "timeout=30" not in result.text
    assert "linux16 /boot/memtest86+x64.bin\n" in result.text  # memtest untouched
    golden("media/ubuntu-grub.cfg", result.text)


def test_ubuntu_loopback_keeps_iso_scan() -> None:
    result = patch("boot/grub/loopback.cfg", UBUNTU_LOOPBACK, SUBIQUITY)
    assert result.entries == 2
    assert all("iso-scan/filename=${iso_path} autoinstall ds=nocloud\\;s=" in line
               for line in _linux_lines(result.text))


def test_debian_grub_gets_a_timeout_and_rescue_is_left_alone() -> None:
    result = patch_grub(DEBIAN_GRUB, DEBIAN)
    assert result.entries == 2
    rescue = [line for line in _linux_lines(result.text) if "rescue/enable=true" in line]
    assert rescue and "preseed/file" not in rescue[0]
    # Debian's menu has no timeout at all (it would wait forever): one is inserted before the first entry.
    assert result.text.index("set timeout=1") < result.text.index("menuentry")


def test_rhel_grub_default_moves_off_the_media_check() -> None:
    result = patch_grub(RHEL_GRUB, KICKSTART)
    assert result.entries == 2  # install + media check; rescue excluded
    assert 'set default="0"' in result.text and 'set default="1"' not in result.text
    assert "set timeout=1\n" in result.text


def test_isolinux_rhel_menu_default_and_timeout(golden) -> None:  # type: ignore[no-untyped-def]
    result = patch_isolinux(RHEL_ISOLINUX, KICKSTART, is_main=True)
    assert result.entries == 2
    assert "timeout 10\n" in result.text and "timeout 600" not in result.text
    blocks = result.text.split("label ")
    install = next(b for b in blocks if b.startswith("linux"))
    check = next(b for b in blocks if b.startswith("check"))
    assert "menu default" in install and "menu default" not in check
    assert "inst.rescue console=ttyS0,115200 quiet\n" in result.text  # rescue untouched
    golden("media/rhel-isolinux.cfg", result.text)


def test_isolinux_debian_files() -> None:
    main = patch("isolinux/isolinux.cfg", DEBIAN_ISOLINUX["isolinux.cfg"], DEBIAN)
    assert main.entries == 0 and "timeout 10\n" in main.text and "timeout 0" not in main.text
    gtk = patch("isolinux/gtk.cfg", DEBIAN_ISOLINUX["gtk.cfg"], DEBIAN)
    assert gtk.entries == 1 and f"console=ttyS0,115200 {DEBIAN} --- quiet" in gtk.text
    assert "menu default" in gtk.text  # already an install entry: kept
    rescue = patch("isolinux/adtxt.cfg", DEBIAN_ISOLINUX["adtxt.cfg"], DEBIAN)
    assert rescue.entries == 0 and rescue.text == DEBIAN_ISOLINUX["adtxt.cfg"]


def test_args_already_present_are_not_repeated() -> None:
    once = patch_grub(UBUNTU_GRUB, SUBIQUITY).text
    assert patch_grub(once, SUBIQUITY).text == once
    line = "  append auto=true priority=critical initrd=x --- quiet\n"
    assert patch_isolinux("label a\n" + line, DEBIAN).text == (
        "label a\n  append auto=true priority=critical initrd=x preseed/file=/cdrom/preseed.cfg --- quiet\n")


@pytest.mark.parametrize(("raw", "escaped"), [("a;b", "a\\;b"), ("x\\y", "x\\\\y"), ("plain", "plain")])
def test_grub_escape(raw: str, escaped: str) -> None:
    assert grub_escape(raw) == escaped


def test_update_sums_rewrites_changed_and_lists_new_files() -> None:
    text = "d41d8cd98f00b204e9800998ecf8427e  ./boot/grub/grub.cfg\n0cc175b9c0f1b6a831c399e269772661  ./keep\n"
    out = update_sums(text, {"boot/grub/grub.cfg": b"new", "nocloud/user-data": b"u"}, "md5")
    assert out.splitlines() == [
        "22af645d1859cb5ca6da0c484f1f37ea  ./boot/grub/grub.cfg",
        "0cc175b9c0f1b6a831c399e269772661  ./keep",
        "7b774effe4a349c6dd82ad4f4f21d34c  ./nocloud/user-data",
    ]
