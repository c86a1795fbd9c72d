"""The qcow2 every qemu build publishes (compaction), and the atomic output file every exporter writes.

Apart from the exporters on purpose: every build compacts its disk, few export it, and the exporters' OVF, VMDK
and tar writers (and lxml) cost ~70 ms to import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from factory import events
from factory.artifact.source import image_info
from factory.fsutil import atomic_path
from factory.run import run


@contextlib.contextmanager
def output(final: Path) -> Iterator[Path]:
    """atomic_path, plus the usual 0644-minus-umask mode (a temp file is created 0600)."""
    with atomic_path(final) as tmp:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)


def compact(disk: Path, out: Path, *, compress: bool = False, extra: Sequence[str] = ()) -> Path:
    """Rewrite disk as a compacted (optionally compressed) qcow2 at out: zero clusters are dropped.

    extra (qemu_img_args.convert) goes after factory's options and before the file names, as in Packer."""
    info = image_info(disk)
    with output(out) as tmp, events.progress(f"compacting {disk.name}", None):
        run(["qemu-img", "convert", "-f", info.format, *(["-c"] if compress else []), *extra, "-O", "qcow2",
             disk, tmp])
    return out
