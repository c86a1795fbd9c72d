"""What the three cloud imports share: names with `{{timestamp}}`, the file to upload, the result artifact."""

from __future__ import annotations

import contextlib
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from factory.artifact.exporters import ExportOptions, export
from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.placeholders import expand
from factory.post.base import PostContext
from factory.post.export import input_disk

LOOPBACK_HOSTS = ("127.", "localhost", "[::1]")


def render_name(template: str, values: Mapping[str, str], option: str) -> str:
    """Packer's legacy `{{timestamp}}` (seconds since the epoch) plus the `{{.Name}}` placeholders."""
    return expand(template.replace("{{timestamp}}", str(int(time.time()))), values, option)


@contextlib.contextmanager
def upload_file(artifact: Artifact, fmt: str, suffixes: tuple[str, ...], who: str,
                ctx: PostContext) -> Iterator[Path]:
    """The artifact's file ending in one of suffixes (uploaded as is), else its disk exported as fmt into a
    temporary directory that is removed afterwards (exports are reproducible, so a retried upload can resume)."""
    for f in artifact.files:
        if f.is_file() and f.name.endswith(suffixes):
            yield f
            return
    try:
        disk = input_disk(artifact, who)
    except FactoryError as exc:
        raise FactoryError(f"{who}: the artifact has no {'/'.join(suffixes)} file and no disk to convert "
                           f"({artifact.describe()})", hint=exc.hint) from None
    with tempfile.TemporaryDirectory(prefix=f".factory-{who}-", dir=ctx.root) as tmp:
        out = Path(tmp) / f"{disk.stem}.{suffixes[0].lstrip('.')}"
        ctx.emit(f"{who}: converting {disk.name} to {fmt} for upload")
        files = export(disk, fmt, out, hardware=artifact.hardware, options=ExportOptions(name=disk.stem))
        yield files[0]


def result_artifact(builder_id: str, artifact: Artifact, artifact_id: str, state: dict[str, str]) -> Artifact:
    """A cloud artifact: no local files, Packer's id string, the details in state (read by the manifest)."""
    return Artifact(builder_id, artifact.build_name, artifact.builder_type, (), hardware=artifact.hardware,
                    artifact_id=artifact_id, vm_name=artifact.vm_name, state=state)


def is_loopback(url: str | None) -> bool:
    host = (url or "").split("://", 1)[-1]
    return host.startswith(LOOPBACK_HOSTS)
