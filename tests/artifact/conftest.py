"""Fixtures for the exporter tests: a small BIOS-bootable GPT disk whose boot code proves the data survived.

The MBR boot code (assembled here with binutils, which gcc brings) prints a banner on COM1, reads the sector
at DATA_LBA through the BIOS (int 13h extensions, so the disk format's mapping is exercised well past the
first megabyte) and prints the marker stored there. A boot that prints the marker proves the exported disk
is bootable and its contents intact, without needing the full Debian guest.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest

from factory.fsutil import file_lock

DATA_LBA = 60000                                   # inside partition 1, ~29 MiB into the disk
DISK_SIZE = 64 * 1024 * 1024 + 5 * 512             # deliberately not a whole MiB (VHD and GCE must round)

BOOT_ASM = f"""
.code16
.globl _start
_start:
    cli
    xor %ax, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7c00, %sp
    sti
    push %dx
    mov $banner, %si
    call puts
    pop %dx
    mov $0x42, %ah
    mov $dap, %si
    int $0x13
    jc fail
    mov $0x8000, %si
    call puts
    jmp halt
fail:
    mov $readfail, %si
    call puts
halt:
    cli
    hlt
    jmp halt
puts:
    mov $0x3f8, %dx
1:  lodsb
    test %al, %al
    jz 2f
    out %al, %dx
    jmp 1b
2:  ret
banner: .asciz "FACTORY-MBR\\r\\n"
readfail: .asciz "READ-FAIL\\r\\n"
.balign 4
dap: .byte 0x10, 0
     .word 1
     .word 0x8000, 0
     .quad {DATA_LBA}
"""


def _assemble(workdir: Path) -> bytes:
    src, obj, out = workdir / "boot.S", workdir / "boot.o", workdir / "boot.bin"
    src.write_text(BOOT_ASM)
    subprocess.run(["as", "--32", "-o", obj, src], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext", "0x7c00", "--oformat", "binary", "-o", out, obj], check=True)
    code = out.read_bytes()
    assert len(code) <= 440, "boot code must fit before the disk signature"
    return code


def make_boot_disk(path: Path, marker: str) -> None:
    """A raw GPT disk (protective MBR with our boot code), random data blocks and marker at DATA_LBA."""
    with open(path, "wb") as fh:
        fh.truncate(DISK_SIZE)
    subprocess.run(["sgdisk", "-o", "-n", "1:2048:0", "-t", "1:8300", str(path)], check=True,
                   stdout=subprocess.DEVNULL)
    code = _assemble(path.parent)
    with open(path, "r+b") as fh:
        fh.seek(0)
        fh.write(code)
        fh.seek(DATA_LBA * 512)
        fh.write(marker.encode() + b"\r\n\x00")
        for offset, size in ((8 << 20, 2 << 20), (40 << 20, 1 << 20), (DISK_SIZE - (1 << 20) - 40960, 4096)):
            fh.seek(offset)
            fh.write(os.urandom(size))


@pytest.fixture(scope="session")
def boot_disk(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(raw disk, marker): the bootable test disk, made once per session (milliseconds; not worth caching)."""
    workdir = tmp_path_factory.mktemp("bootdisk")
    marker = "FACTORY-DATA-" + secrets.token_hex(6)
    with file_lock(workdir / ".lock"):
        make_boot_disk(workdir / "disk.raw", marker)
    return workdir / "disk.raw", marker


@pytest.fixture(scope="session")
def boot_qcow2(boot_disk: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The same disk as a qcow2 (the builder's usual output)."""
    raw, marker = boot_disk
    out = tmp_path_factory.mktemp("bootqcow") / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(out)], check=True)
    return out, marker
