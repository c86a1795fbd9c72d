"""`null` means "unset" for every optional attribute (real templates write `except = null`, `iso_url = null`):
on source options, variables, build names, provisioner and post-processor meta-arguments."""

from __future__ import annotations

from pathlib import Path

from factory.template import load

DATA = Path(__file__).parent / "data" / "null_unset.pkr.hcl"


def test_null_everywhere_is_the_default(tmp_path: Path) -> None:
    project = load(DATA)
    (build,) = project.builds
    assert build.name == ""
    assert [s.full_name for s in build.sources] == ["qemu.x", "qemu.y"]
    x = build.sources[0].config
    assert x.iso_urls == [] and x.boot_command == [] and x.qemuargs == [] and x.vm_name is None
    assert build.sources[1].config.output_directory is None
    (prov,) = build.provisioners
    assert (prov.only, prov.except_, prov.max_retries, prov.pause_before, prov.timeout) == ((), (), 0, 0.0, None)
    assert prov.applies_to("qemu.x") and prov.applies_to("qemu.y")
    (manifest,), (checksum,) = build.post_processors
    assert manifest.keep_input_artifact is None and manifest.name == "" and manifest.applies_to("qemu.y")
    assert checksum.config.checksum_types == ["sha256"]
    assert build.error_cleanup_provisioner is not None and build.error_cleanup_provisioner.only == ()


def test_null_variable_default_is_null_until_set(tmp_path: Path) -> None:
    assert load(DATA).builds[0].sources[0].config.vm_name is None
    project = load(DATA, vars=["v=named"])
    assert project.builds[0].sources[0].config.vm_name == "named"
