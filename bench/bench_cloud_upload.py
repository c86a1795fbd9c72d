"""amazon-import's S3 upload against boto3's plain `upload_file` of the same sparse disk, in one run.

The disk: a sparse raw file of --size-gib (8) holding --data-gib (1) of random (incompressible) data in 16 MiB
extents spread over it. Both uploads go to moto's S3 server on 127.0.0.1 (a separate process):
  floor:   boto3 `upload_file(disk.raw)` with its default TransferConfig (multipart, 10 threads): every byte of
           the file, holes included;
  factory: what amazon-import does: the disk exported as a streamOptimized VMDK (only allocated data), then
           factory's parallel multipart upload; the time includes the conversion.
Both times run to the moment CompleteMultipartUpload is sent, which the floor then does not send (its upload is
aborted instead). Why: moto's server assembles a completed object in memory (a bytearray of every part, then a
copy of it), so completing the floor's 8 GiB object needs ~16 GiB of RAM and fails with HTTP 500, while real S3
completes server-side in about constant time. The parts themselves spill to disk on moto's side (each is larger
than MOTO_S3_DEFAULT_KEY_BUFFER_SIZE), so what is timed is what scales with the bytes sent. Factory's run does
complete (its object is the ~1 GiB VMDK); that time is printed too.
Printed: bytes sent per allocated byte for each (goal for factory <= 1.05) and the time ratio factory/floor.

    .venv/bin/python bench/bench_cloud_upload.py [--size-gib 8] [--data-gib 1]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from factory.artifact.model import Artifact  # noqa: E402
from factory.post import PostContext  # noqa: E402
from factory.post.cloud.common import upload_file  # noqa: E402
from factory.post.cloud.s3upload import upload  # noqa: E402

MIB, GIB = 1 << 20, 1 << 30
EXTENT = 16 * MIB


def make_disk(path: Path, size: int, data: int) -> int:
    """Write `data` bytes of random extents spread evenly over a sparse file of `size`; the bytes allocated."""
    count = data // EXTENT
    stride = (size - EXTENT) // max(1, count - 1)
    with open(path, "wb") as fh:
        fh.truncate(size)
        for i in range(count):
            fh.seek(i * stride // MIB * MIB)
            fh.write(os.urandom(EXTENT))
    out = subprocess.run(["qemu-img", "map", "--output=json", "-f", "raw", str(path)], check=True,
                         capture_output=True).stdout
    return sum(e["length"] for e in json.loads(out) if e.get("data"))


def moto(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, TMPDIR=str(tmp))   # moto spills large objects to temporary files
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("moto server did not start")


class PartsSent(Exception):
    """Raised before the floor's CompleteMultipartUpload: its parts are all sent (see the module docstring)."""


def stop_watch(s3: Any, stop: bool) -> dict[str, float]:
    """Record when CompleteMultipartUpload is about to be sent (`parts_done`); with stop, do not send it."""
    seen: dict[str, float] = {}

    def before_complete(**_: Any) -> None:
        seen["parts_done"] = time.monotonic()
        if stop:
            raise PartsSent

    s3.meta.events.register("before-call.s3.CompleteMultipartUpload", before_complete)
    return seen


def floor_upload(url: str, disk: Path) -> float:
    """Seconds boto3's upload_file takes to send every part of disk (its own client, so the hook is its own)."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                      aws_secret_access_key="bench")
    seen = stop_watch(s3, stop=True)
    start = time.monotonic()
    try:
        s3.upload_file(str(disk), "bench", "plain.raw")
    except Exception as exc:     # s3transfer wraps PartsSent, and aborts the multipart upload
        if "parts_done" not in seen:
            raise RuntimeError(f"the floor upload failed before its last part: {exc}") from exc
    left = s3.list_multipart_uploads(Bucket="bench").get("Uploads", [])
    assert not left, f"the floor's multipart upload was not aborted: {left}"
    return seen["parts_done"] - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gib", type=float, default=8)
    ap.add_argument("--data-gib", type=float, default=1)
    args = ap.parse_args()
    import boto3

    with tempfile.TemporaryDirectory(prefix="bench-cloud-", dir=ROOT / "build" if (ROOT / "build").is_dir()
                                     else None) as tmpdir:
        tmp = Path(tmpdir)
        disk = tmp / "disk.raw"
        allocated = make_disk(disk, int(args.size_gib * GIB), int(args.data_gib * GIB))
        proc, url = moto(tmp)
        try:
            s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1", aws_access_key_id="bench",
                              aws_secret_access_key="bench")
            s3.create_bucket(Bucket="bench")
            floor_sent = disk.stat().st_size
            floor = floor_upload(url, disk)

            seen = stop_watch(s3, stop=False)
            art = Artifact("bench", "bench", "qemu", (disk,), disk=disk)
            ctx = PostContext("bench", "qemu", "bench", "bench", emit=lambda line: None, root=tmp)
            start = time.monotonic()
            with upload_file(art, "vmdk", (".vmdk",), "amazon-import", ctx) as vmdk:
                stats = upload(s3, vmdk, "bench", "disk.vmdk", concurrency=4, emit=lambda line: None)
            took = time.monotonic() - start
            parts_done = seen["parts_done"] - start
        finally:
            proc.terminate()
            proc.wait()
    print(f"disk: {args.size_gib:g} GiB sparse raw, {allocated / GIB:.3f} GiB allocated (random data)")
    print(f"floor   boto3 upload_file: {floor_sent / GIB:.3f} GiB sent, {floor_sent / allocated:.3f} bytes per "
          f"allocated byte, {floor:.1f} s to its last part")
    print(f"factory vmdk + multipart:  {stats.sent_bytes / GIB:.3f} GiB sent in {stats.sent_parts} parts, "
          f"{stats.sent_bytes / allocated:.3f} bytes per allocated byte (goal <= 1.05), {parts_done:.1f} s to its "
          f"last part ({took:.1f} s completed)")
    print(f"time ratio factory/floor (to the last part): {parts_done / floor:.2f}")


if __name__ == "__main__":
    main()
