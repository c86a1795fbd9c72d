"""The Driver protocol is a seam: a whole build runs, through the code `factory build` runs for each source
(build_source: the same step list, runner and cleanups), on a second driver that is not QEMU.

The test-only loopback driver (fixtures/loopback.py) runs the "guest" as a real sshd on a loopback address of its
own, reached at its own address (nothing forwarded, not 127.0.0.1); its disk is a plain file. No VM boots, so
these run in seconds."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from fixtures.loopback import LoopbackDriver

from factory.artifact.model import Artifact
from factory.build import Event, EventBus, EventKind
from factory.errors import FactoryError
from factory.steps.plan import BuildOptions, build_source
from factory.template import load

USER = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
BASE = b"BASE" * 128


def _template(tmp_path: Path, name: str, body: str, build: str = "") -> Path:
    base = tmp_path / "base.raw"
    base.write_bytes(BASE + bytes(1024 * 1024 - len(BASE)))
    tpl = tmp_path / "t.pkr.hcl"
    tpl.write_text(f"""
source "qemu" "seam" {{
  disk_image       = true
  iso_url          = "{base}"
  iso_checksum     = "none"
  format           = "raw"
  disk_size        = "2M"
  vm_name          = "{name}"
  output_directory = "{tmp_path / 'out'}"
  serial_log       = "{tmp_path / 'serial.log'}"
  ssh_username     = "{USER}"
  ssh_timeout      = "60s"
  shutdown_timeout = "30s"
{body}
}}
build {{
  sources = ["source.qemu.seam"]
{build}
}}
""")
    return tpl


def _build(tmp_path: Path, tpl: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Artifact], list[Event]]:
    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache"))
    project = load(tpl)
    build = project.builds[0]
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    return build_source(build, build.sources[0], tmp_path, bus, BuildOptions(driver=LoopbackDriver.name)), events


def _guest_processes(name: str) -> list[str]:
    """sshd processes of this build's guest still running (their config lives under the build's scratch dir)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if f"{name}.guest" in text:
            found.append(text)
    return found


def test_boot_ssh_provision_shutdown_artifact_on_a_second_driver(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"seam-{uuid.uuid4().hex[:8]}"
    tpl = _template(tmp_path, name, """
  shutdown_command = "touch \\"$FACTORY_POWEROFF\\""
  http_content     = { "/hello" = "HELLO-FROM-THE-BUILD-HOST" }
""", f"""
  provisioner "shell" {{
    inline = ["printf PROVISIONED | dd of=\\"$FACTORY_DISK\\" bs=1 seek=512 conv=notrunc status=none",
              "curl -fsS http://$PACKER_HTTP_ADDR/hello; echo"]
  }}
  post-processor "manifest" {{
    output = "{tmp_path / 'manifest.json'}"
  }}
""")
    artifacts, events = _build(tmp_path, tpl, monkeypatch)

    steps = [e.step for e in events if e.kind is EventKind.STEP_STARTED]
    assert "install" not in steps
    ran = [s for s in steps if s in ("disk", "boot", "connect", "provision-1", "shutdown", "compact", "finalize",
                                     "post-processors")]
    assert ran == ["disk", "boot", "connect", "provision-1", "shutdown", "compact", "finalize", "post-processors"]
    said = [e.message for e in events if e.kind in (EventKind.MESSAGE, EventKind.NOTICE)]
    # The communicator went where the driver said: the guest's own address, nothing forwarded.
    at = [m for m in said if m.startswith("the guest's SSH is at ")]
    assert len(at) == 1 and not at[0].endswith(("127.0.0.1:22", "SSH forwarded")), said
    address = at[0].removeprefix("the guest's SSH is at ")
    assert any(m.startswith("waiting up to") and m.endswith(f"@{address}") for m in said), said
    assert "accelerator: none (the guest is a process on the host)" in said
    assert not any("ACPI" in m or "VNC" in m for m in said), said  # shutdown_command powered it off
    # {{ .HTTPIP }} / PACKER_HTTP_ADDR are the driver's host address: the guest fetched from factory's server.
    output = [e.message for e in events if e.kind is EventKind.OUTPUT and e.source == "shell"]
    assert "HELLO-FROM-THE-BUILD-HOST" in output, output

    disk = tmp_path / "out" / name
    assert [a.disk for a in artifacts] == [disk]  # the manifest post-processor passes the artifact on
    data = disk.read_bytes()
    assert data[:len(BASE)] == BASE and data[512:523] == b"PROVISIONED" and len(data) == 2 * 1024 * 1024
    assert (tmp_path / "base.raw").read_bytes()[512:523] != b"PROVISIONED"  # the base image was never written
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["builds"][0]["files"][0]["name"].endswith(f"out/{name}"), manifest
    serial = (tmp_path / "serial.log").read_text()
    assert f"cloud-init: 1 key(s) authorized for {USER}" in serial  # the ephemeral key, from the NoCloud seed
    assert f"Server listening on {address.rsplit(':', 1)[0]}" in serial  # the guest's console output
    assert not _guest_processes(name)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out")) == []


def test_acpi_power_down_when_there_is_no_shutdown_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"seam-{uuid.uuid4().hex[:8]}"
    _, events = _build(tmp_path, _template(tmp_path, name, ""), monkeypatch)
    said = [e.message for e in events if e.kind in (EventKind.MESSAGE, EventKind.NOTICE)]
    assert "ACPI power-down (the power button)" in said and "VM stopped" in said
    assert not any("ignored the ACPI power button" in m for m in said), said
    assert (tmp_path / "out" / name).stat().st_size == 2 * 1024 * 1024
    assert not _guest_processes(name)


def test_a_guest_that_dies_fails_the_build_with_its_console_and_cleans_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The guest powers itself off in the middle of provisioning: the next provisioner's failure says so."""
    name = f"seam-{uuid.uuid4().hex[:8]}"
    tpl = _template(tmp_path, name, "", """
  provisioner "shell" {
    inline = ["touch \\"$FACTORY_POWEROFF\\"; sleep 30"]
  }
""")
    with pytest.raises(FactoryError) as err:
        _build(tmp_path, tpl, monkeypatch)
    assert "shell provisioner" in err.value.message and "dropped while running" in err.value.message
    assert not (tmp_path / "out").exists()
    assert not _guest_processes(name)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


@pytest.mark.parametrize(("option", "message"), [
    ('boot_command = ["<enter>"]', "boot_command: the loopback driver has no keys support"),
    ('floppy_content = { "a.txt" = "x" }', "floppy_files / floppy_dirs / floppy_content: the loopback driver "
                                           "has no floppy support"),
    ("qmp_enable = true", "qmp_enable: the loopback driver has no user-monitor support"),
])
def test_what_the_driver_cannot_do_is_refused_by_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       option: str, message: str) -> None:
    tpl = _template(tmp_path, f"seam-{uuid.uuid4().hex[:8]}", option)
    with pytest.raises(FactoryError, match=message):
        _build(tmp_path, tpl, monkeypatch)
    assert not (tmp_path / "out").exists()
