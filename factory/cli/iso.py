"""`factory iso-build` (unattended installer ISOs) and `factory seed-iso` (NoCloud seeds and data ISOs)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from factory import events, ui
from factory.cli import app
from factory.errors import FactoryError, die
from factory.fsutil import check_output_file
from factory.media.catalog import Release
from factory.media.isofs import check_media_path
from factory.schema.values import CheckKind, Checksum


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        die(f"cannot read {what} {path}: {exc.strerror}", hint=f"check the {what} path")


def _file_specs(specs: list[str], taken: set[str]) -> dict[str, bytes | Path]:
    """Parse --file SRC[:DEST] (DEST defaults to SRC's name) into media path -> source file; a DEST already
    `taken` (user-data ...) or given twice is an error, not a silent replacement."""
    out: dict[str, bytes | Path] = {}
    for spec in specs:
        src, sep, dest = spec.partition(":")
        path = Path(src)
        if not path.is_file():
            die(f"--file {spec}: {src} is not a file", hint="use --file SRC[:DEST] with an existing file")
        try:
            media = check_media_path(dest if sep and dest else path.name)
        except FactoryError as exc:
            die(f"--file {spec}: {exc.message}", hint=exc.hint)
        if media in out or media in taken:
            die(f"--file {spec}: {media} is already on the ISO (from another --file or --user-data)",
                hint="give each file its own destination: --file SRC:DEST")
        out[media] = path
    return out


@app.command("seed-iso")
def seed_iso(
    output: Annotated[Path, typer.Option("-o", "--output", help="ISO to write.")],
    user_data: Annotated[Path | None, typer.Option("--user-data", help="cloud-init user-data file.")] = None,
    meta_data: Annotated[Path | None, typer.Option("--meta-data", help="meta-data (default: an id).")] = None,
    network_config: Annotated[Path | None, typer.Option("--network-config", help="network-config file.")] = None,
    files: Annotated[list[str] | None, typer.Option("--file", help="Extra SRC[:DEST] (repeatable).")] = None,
    label: Annotated[str, typer.Option("--label", help="Volume label (cloud-init wants 'cidata').")] = "cidata",
) -> None:
    """Write a NoCloud seed ISO (label cidata) or any small data ISO, in pure Python."""
    from factory.media.seed import make_iso

    content: dict[str, bytes | Path] = {}
    if user_data is not None:
        ud = _read(user_data, "--user-data")
        content["user-data"] = ud
        content["meta-data"] = (_read(meta_data, "--meta-data") if meta_data is not None else
                                f"instance-id: iid-{hashlib.sha256(ud).hexdigest()[:16]}\n".encode())
    elif meta_data is not None:
        content["meta-data"] = _read(meta_data, "--meta-data")
    if network_config is not None:
        content["network-config"] = _read(network_config, "--network-config")
    check_output_file(output, {"--user-data": user_data, "--meta-data": meta_data,
                               "--network-config": network_config,
                               **{f"--file {spec}": Path(spec.partition(":")[0]) for spec in files or []}})
    extra = _file_specs(files or [], taken=set(content))
    content.update(extra)
    if not content:
        die("nothing to put on the ISO", hint="pass --user-data FILE and/or --file SRC[:DEST]")
    make_iso(content, output, label=label)
    ui.success(f"wrote {output} ({output.stat().st_size // 1024} KiB, label {label!r})")


@app.command("iso-build")
def iso_build(
    distro: Annotated[str, typer.Argument(help="Release from the catalog (see `factory iso-list`).")],
    iso: Annotated[Path | None, typer.Option("--iso", help="Use this local ISO instead of downloading.")] = None,
    iso_checksum: Annotated[str | None, typer.Option(
        "--iso-checksum", help="sha256:HEX, file:SUMS (path or URL) or none; default: the catalog's.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="ISO to write.")] = None,
    var: Annotated[list[str] | None, typer.Option("--var", help="Config variable KEY=VALUE (repeatable).")] = None,
    preseed: Annotated[Path | None, typer.Option(
        "--preseed", help="Ready user-data / preseed.cfg / ks.cfg to use instead of the template.")] = None,
    template: Annotated[Path | None, typer.Option("--template", help="Own Jinja template for the config.")] = None,
    kernel_args: Annotated[str, typer.Option("--kernel-args", help="Extra kernel arguments.")] = "",
    offline: Annotated[bool, typer.Option("--offline", help="Never touch the network.")] = False,
) -> None:
    """Write an installer ISO that installs DISTRO unattended (no key pressed) in BIOS/UEFI, CD/USB."""
    import time

    from factory.media import catalog
    from factory.media import iso as remaster_mod
    from factory.media import preseed as preseed_mod

    release = catalog.load(distro)
    out = output or Path(f"{release.name}-unattended.iso")
    inputs = {"--iso": iso, "--preseed": preseed, "--template": template}
    check_output_file(out, inputs)
    login = None if preseed else preseed_mod.default_login(var or [])
    if login:
        ui.info(login.said)
    pairs = [*(login.pairs if login else ()), *(var or [])]
    # A ready --preseed file carries its own login: only factory's templates (and --template) need a password.
    variables = preseed_mod.PreseedVars.from_pairs(pairs, login_needed=preseed is None)
    config = preseed_mod.render(release.family, variables, template=template, ready_file=preseed)
    src, sha = _source_iso(release, iso, iso_checksum, offline)
    check_output_file(out, {**inputs, "source ISO": src})
    remaster_mod.check_installer(src, release)
    args = " ".join(a for a in (release.family.kernel_args(remaster_mod.volume_id(src)), kernel_args) if a)
    start = time.monotonic()
    with events.progress(f"remaster {out.name}", src.stat().st_size) as bar:
        report = remaster_mod.remaster_cached(src, sha, out, config=config, kernel_args=args,
                                              boot_configs=release.boot_configs,
                                              progress=lambda n, _total: bar.advance(n))
    took = time.monotonic() - start
    if report is None:
        ui.success(f"wrote {out} from the cache in {took:.2f}s (same ISO and config as an earlier build)")
    else:
        entries = ", ".join(f"{p} ({n})" for p, n in report.patched.items() if n)
        ui.info(f"unattended entries: {entries}; added: {', '.join(report.added)}")
        ui.success(f"wrote {out} ({out.stat().st_size / 2**20:.0f} MiB, volume {report.volume_id!r}) "
                   f"in {took:.1f}s")
    if login and login.password:
        # The one place the generated password is shown: stdout, unmasked, once; the media hold only its hash.
        typer.echo(f"password for {variables.username}: {login.password}")


def _source_iso(release: Release, iso: Path | None, checksum: str | None, offline: bool) -> tuple[Path, str]:
    """The verified source ISO and its sha256: --iso (checked against --iso-checksum) or the catalog's."""
    from factory.media import cache

    if iso is None:
        path = cache.fetch_release(release, offline=offline)
        return path, release.sha256 or known_sha256(path)
    if not iso.is_file():
        die(f"--iso {iso}: no such file", hint="give the path of the vendor's installer ISO")
    spec = checksum or release.checksum
    parsed = Checksum.parse(spec)
    if parsed.kind in (CheckKind.SHA256, CheckKind.NONE):
        sha = known_sha256(iso)
        if parsed.kind is CheckKind.SHA256 and sha != parsed.value:
            die(f"checksum mismatch for {iso}: expected sha256 {parsed.value}, got {sha}",
                hint="this is not the ISO you meant, or it is corrupt; fix --iso-checksum or fetch it again"
                     + ("" if checksum else f" (the default is {release.name}'s pinned sha256)"))
        return iso, sha
    return iso, cache.verify(iso, spec, offline=offline)


def known_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so a rebuild does not re-read a multi-GiB ISO."""
    from factory.media import cache

    return cache.indexed_sha256(path)
