"""Post-processors: manifest, checksum, compress, shell-local, artifice (Packer core) and vagrant.

The meta-arguments (`name`, `only`, `except`, `keep_input_artifact`) are handled by the template layer
(PostProcessorSpec), not declared here. Export post-processors (OVA, VMDK, VHD, GCE ...) are declared by the
exports work (issue 5) in the marked section at the end of this file or in factory/schema/exports.py.
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from factory.errors import FactoryError
from factory.options import Component, Kind, Support, opt
from factory.schema.common import ShellLocalOptions
from factory.schema.provisioners import script_problems
from factory.schema.types import Checked, OptionProblem

IGNORED = Support.IGNORED


@dataclass(frozen=True)
class ManifestPostProcessor(Component, kind=Kind.POST_PROCESSOR, name="manifest"):
    """Record the build's artifacts in Packer's packer-manifest.json format."""

    summary: ClassVar[str] = ("Appends the artifact's files, sizes and ids to a JSON manifest in Packer's "
                              "format (builds[], last_run_uuid), under a lock.")

    output: str = opt("packer-manifest.json", help="Path of the manifest file; runs append to it.")
    strip_path: bool = opt(False, help="Record file names without their directories.")
    strip_time: bool = opt(False, help="Leave out `build_time`, so manifests of identical builds compare equal.")
    custom_data: dict[str, str] = opt({}, help="Free-form map copied into the build's `custom_data`.")


CHECKSUM_TYPES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")


@dataclass(frozen=True)
class ChecksumPostProcessor(Component, kind=Kind.POST_PROCESSOR, name="checksum"):
    """Write checksum files of the artifact's files."""

    summary: ClassVar[str] = ("Writes one checksum file per algorithm for the artifact's files "
                              "(sha256 by default; Packer's default is md5).")

    # Deliberate deviation: Packer defaults to md5, which no one should verify images with any more.
    checksum_types: list[str] = opt(["sha256"], help="Algorithms: `md5`, `sha1`, `sha224`, `sha256`, "
                                    "`sha384`, `sha512`. factory's default is `[\"sha256\"]` (Packer's is "
                                    "`[\"md5\"]`): set `[\"md5\"]` explicitly to get Packer's files.")
    output: str = opt("packer_{{.BuildName}}_{{.BuilderType}}_{{.ChecksumType}}.checksum",
                      help="Path of each checksum file; `{{.BuildName}}`, `{{.BuilderType}}` and "
                      "`{{.ChecksumType}}` are expanded.")


COMPRESS_FORMATS = ("tar.gz", "tar.zst", "tar.xz", "tar", "gz", "zst", "xz")
_COMPRESS_ALIASES = {"tgz": "tar.gz", "tzst": "tar.zst", "txz": "tar.xz"}


def _compress_format(output: str, explicit: str | None) -> str | OptionProblem:
    """The archive format `compress` writes (`format`, else the output's extension), or why there is none."""
    if explicit:
        fmt = _COMPRESS_ALIASES.get(explicit, explicit)
        if fmt in COMPRESS_FORMATS:
            return fmt
        return OptionProblem("format", f"unknown compression format {explicit!r}",
                             "use: " + ", ".join(COMPRESS_FORMATS))
    name = Path(output).name
    for fmt in (*COMPRESS_FORMATS, *_COMPRESS_ALIASES):
        if name.endswith("." + fmt):
            return _COMPRESS_ALIASES.get(fmt, fmt)
    return OptionProblem("output", f"cannot tell the compression format of {name!r} from its extension",
                         "end it with one of " + ", ".join("." + f for f in COMPRESS_FORMATS) + ", or set `format`")


def compress_format(output: str, explicit: str | None) -> str:
    """The archive format `compress` writes (FactoryError naming the option when there is none)."""
    found = _compress_format(output, explicit)
    if isinstance(found, OptionProblem):
        raise FactoryError(f"{found.option}: {found.message}", hint=found.hint)
    return found


COMPRESS_LEVEL_HINT = "gzip and xz take 0-9, zstd 1-22"


def compress_level_problem(fmt: str, level: int) -> str | None:
    """Why level does not suit fmt's codec (gzip and xz 0-9, zstd 1-22; a bare tar ignores it), or None."""
    low, high = (1, 22) if fmt.endswith("zst") else (0, 9)
    if fmt == "tar" or low <= level <= high:
        return None
    return f"compression_level {level} is out of range for {fmt} ({low}-{high})"


@dataclass(frozen=True)
class CompressPostProcessor(Checked, Component, kind=Kind.POST_PROCESSOR, name="compress"):
    """Compress the artifact's files into one archive."""

    summary: ClassVar[str] = ("Packs the artifact into an archive chosen by the output's extension: .tar, "
                              ".tar.gz/.gz, .tar.zst/.zst, .tar.xz/.xz.")

    output: str = opt("packer_{{.BuildName}}_{{.BuilderType}}.tar.gz", help="Archive path; its extension picks "
                      "the format. `{{.BuildName}}` and `{{.BuilderType}}` are expanded.")
    format: str | None = opt(None, help="Format used instead of guessing from `output` (`tar`, `tar.gz`, `gz`, "
                             "`tar.zst`, `zst`, `tar.xz`, `xz`).")
    # The widest range of the three codecs; problems() checks the chosen codec's own once the format is known.
    compression_level: int = opt(6, minimum=0, maximum=22, help="Compression level: gzip and xz 0 (none or "
                                 "fastest) to 9 (small), zstd 1 to 22.")

    def problems(self) -> list[OptionProblem]:
        """The format and the level for its codec, at validate rather than after the build: unless the output's
        name ends in a placeholder, which only the run can expand."""
        fmt = _compress_format(self.output, self.format)
        if isinstance(fmt, OptionProblem):
            return [] if not self.format and "}}" in Path(self.output).name else [fmt]
        problem = compress_level_problem(fmt, self.compression_level)
        if problem is None:
            return []
        return [OptionProblem("compression_level", problem, COMPRESS_LEVEL_HINT,
                              also=("format",) if self.format else ("output",))]


@dataclass(frozen=True)
class ShellLocalPostProcessor(ShellLocalOptions, Checked, Component, kind=Kind.POST_PROCESSOR,
                              name="shell-local"):
    """Run commands on the build host after the build."""

    summary: ClassVar[str] = "Runs commands or scripts on the build host with the artifact's details set."

    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (("command", "inline", "script", "scripts"),)

    def problems(self) -> list[OptionProblem]:
        """Packer's shell-local post-processor refuses nothing to run, as the provisioner does."""
        return script_problems("shell-local", {"command": self.command, "inline": self.inline,
                                               "script": self.script, "scripts": self.scripts}, "post-processor")


@dataclass(frozen=True)
class ArtificePostProcessor(Component, kind=Kind.POST_PROCESSOR, name="artifice"):
    """Replace the artifact with arbitrary files (for post-processors that follow in the chain)."""

    summary: ClassVar[str] = "Makes the listed files the artifact for the rest of the post-processor chain."

    files: list[str] = opt(required=True, help="Files that become the new artifact. Required.")


@dataclass(frozen=True)
class VagrantPostProcessor(Checked, Component, kind=Kind.POST_PROCESSOR, name="vagrant"):
    """Package the artifact as a Vagrant box."""

    summary: ClassVar[str] = "Packages the disk as a Vagrant box for the libvirt or virtualbox provider."

    output: str = opt("packer_{{.BuildName}}_{{.Provider}}_{{.Architecture}}.box", help="Box path; "
                      "`{{.BuildName}}`, `{{.Provider}}`, `{{.Architecture}}`, `{{.BuilderType}}` and "
                      "`{{.ArtifactId}}` are expanded.")
    compression_level: int = opt(6, minimum=0, maximum=9, help="gzip level of the box, 0 (none) to 9.")
    include: list[str] = opt([], help="Extra files packed into the box (e.g. a README).")
    vagrantfile_template: str | None = opt(None, help="Vagrantfile packed into the box, rendered as a "
                                           "template.")
    vagrantfile_template_generated: bool = opt(False, help="`vagrantfile_template` is created during the build, "
                                               "so `validate` does not require it to exist yet.")
    provider_override: str | None = opt(None, help="Provider to package for when the builder does not imply "
                                        "one (`libvirt`, `virtualbox`).")
    architecture: str | None = opt(None, help="Architecture recorded in the box's metadata.json and expanded "
                                   "in `{{.Architecture}}` (default: the build host's, in Go's names: amd64, "
                                   "arm64, i386 ...).")

    def problems(self) -> list[OptionProblem]:
        """Packer checks a vagrantfile_template that the build does not generate when the template is read."""
        template = self.vagrantfile_template
        if template and not self.vagrantfile_template_generated and not Path(template).expanduser().is_file():
            return [OptionProblem("vagrantfile_template", f"vagrantfile_template {template!r} does not exist",
                                  "paths are relative to the directory factory runs in; set "
                                  "vagrantfile_template_generated = true if the build writes it")]
        return []

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"provider_override": ("libvirt", "virtualbox")}


# ==== Export post-processors (issue 5 / exports owner) =========================================================
# Declare the exports as post-processors here or in factory/schema/exports.py (every module in this package is
# loaded by factory.options), e.g. `class OvaPostProcessor(Component, kind=Kind.POST_PROCESSOR, name="ova")`.
