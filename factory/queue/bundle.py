"""A template and every file it reads, packed into one content-addressed tar for workers.

Layout (bundle.json describes it):

    template/...            the template folder (a file argument packs its folder: path.root is that folder)
    var-files/<n>-<name>    each -var-file
    inputs/<var>/<name>     each variable whose value names a local file or folder (a disk image, a key, an
                            http directory): the worker passes -var <var>=<its copy>

The tar is deterministic (sorted names, zero times and owners), so the same inputs give the same key and the
queueing lock can tell a duplicate submit. Build outputs and VCS folders are left out.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from factory.artifact.tario import extract_plain
from factory.errors import FactoryError

SKIP_DIRS = (".git", ".hg", ".svn", "packer_cache", "__pycache__", ".venv", "node_modules")
META = "bundle.json"


@dataclass
class Manifest:
    template: str                                          # the template argument, inside the bundle
    var_files: list[str] = field(default_factory=list)
    inputs: dict[str, str] = field(default_factory=dict)   # variable -> its file inside the bundle


def _skipped(rel: Path) -> bool:
    return any(part in SKIP_DIRS or part.startswith("output-") for part in rel.parts)


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if (p.is_file() or p.is_symlink()) and not
                  _skipped(p.relative_to(folder)))


def _add(tar: tarfile.TarFile, src: Path, name: str) -> None:
    info = tar.gettarinfo(str(src), arcname=name)
    if info.issym() and src.resolve().is_file():  # follow links: a worker has no target to point at
        info = tar.gettarinfo(str(src.resolve()), arcname=name)
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    info.mode = 0o755 if info.mode & 0o111 else 0o644
    if info.isfile():
        with open(src, "rb") as fh:
            tar.addfile(info, fh)


def file_inputs(variables: dict[str, Any], folder: Path) -> dict[str, Path]:
    """Variables whose value names an existing local file or folder (not the template folder or above it)."""
    found = {}
    for name, var in sorted(variables.items()):
        value = getattr(var, "value", None)
        if not isinstance(value, str) or not value.strip() or "://" in value or "\n" in value:
            continue
        path = Path(value).expanduser()
        try:
            exists = path.is_file() or path.is_dir()
        except OSError:
            continue
        if not exists or path.resolve() in (folder.resolve(), *folder.resolve().parents):
            continue
        found[name] = path
    return found


def pack(template: Path, var_files: list[Path], variables: dict[str, Any], out: Path,
         leave_out: frozenset[Path] = frozenset()) -> Manifest:
    """Write the bundle of template (a file or folder) to out, without the files in leave_out (secrets, sealed
    apart); what it holds."""
    folder = template if template.is_dir() else template.parent
    arg = "template" if template.is_dir() else f"template/{template.name}"
    manifest = Manifest(template=arg)
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for src in _files_under(folder):
            if src in leave_out:
                continue
            _add(tar, src, f"template/{src.relative_to(folder).as_posix()}")
        for i, vf in enumerate(var_files):
            if not vf.is_file():
                raise FactoryError(f"var file {vf} does not exist")
            name = f"var-files/{i}-{vf.name}"
            _add(tar, vf, name)
            manifest.var_files.append(name)
        for var, path in file_inputs(variables, folder).items():
            base = f"inputs/{var}/{path.name}"
            for src in ([path] if path.is_file() else _files_under(path)):
                _add(tar, src, base if path.is_file() else f"{base}/{src.relative_to(path).as_posix()}")
            manifest.inputs[var] = base
        data = json.dumps(asdict(manifest), sort_keys=True).encode()
        info = tarfile.TarInfo(META)
        info.size, info.mode = len(data), 0o644
        import io

        tar.addfile(info, io.BytesIO(data))
    return manifest


def unpack(bundle: Path, dest: Path) -> Manifest:
    """Extract a bundle into dest: only files and directories, nothing outside dest (see extract_plain)."""
    try:
        with tarfile.open(bundle) as tar:
            extract_plain(tar, dest)
    except (ValueError, tarfile.TarError) as exc:
        raise FactoryError(f"bundle {bundle.name}: {exc}", hint="the bundle was not made by `factory submit`; "
                           "submit the template again") from exc
    data = json.loads((dest / META).read_text())
    return Manifest(template=data["template"], var_files=list(data["var_files"]), inputs=dict(data["inputs"]))


def bundle_files(dest: Path) -> set[Path]:
    """Every file an unpacked bundle holds (what a build finds, as opposed to what it makes)."""
    return {p for p in dest.rglob("*") if p.is_file()}
