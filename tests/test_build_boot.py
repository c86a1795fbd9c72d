"""`factory build` through the CLI on a real QEMU (TCG) with a GRUB guest (boots in seconds, has a command line):
boot_steps announced and typed with boot_keygroup_interval between them, an installer ISO QEMU reads over HTTP
itself (iso_skip_cache), the SSH forward bound by QEMU while another program holds the first port of the range;
and skip_nat_mapping with an error-cleanup-provisioner that runs while the VM is still up.

With skip_nat_mapping the communicator goes to ssh_host:ssh_port; a real OpenSSH server on the host stands in for
a bridged guest there (GRUB runs no sshd), so the provisioners really run over SSH."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.grubvm import grub_image, grub_source
from fixtures.httpfiles import serving
from fixtures.sshd import SshServer
from test_build_failures import Run, _template, assert_nothing_left, qemu_pids


@pytest.fixture
def iso_server(tmp_path: Path) -> Iterator[tuple[str, list[str]]]:
    grub_image(tmp_path, "grub.iso")
    with serving(tmp_path) as (base, seen):
        yield f"{base}/grub.iso", seen


def _free_pair() -> int:
    import socket

    for base in range(47500, 47900, 7):
        ok = True
        for port in (base, base + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    ok = False
        if ok:
            return base
    raise RuntimeError("no free ports")


@pytest.mark.vm
def test_boot_steps_over_an_iso_qemu_reads_itself_and_a_busy_first_ssh_port(
        tmp_path: Path, iso_server: tuple[str, list[str]]) -> None:
    url, requests = iso_server
    name = f"steps-{uuid.uuid4().hex[:8]}"
    base = _free_pair()
    holder = subprocess.Popen([sys.executable, "-c", "import socket,sys; s=socket.socket(); "
                               f"s.bind(('127.0.0.1', {base})); s.listen(); print('ready', flush=True); "
                               "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
    (tmp_path / "t").mkdir()
    tpl = tmp_path / "t" / "t.pkr.hcl"
    tpl.write_text(f"""
source "qemu" "g" {{
  iso_url        = "{url}"
  iso_checksum   = "none"
  iso_skip_cache = true
  disk_size      = "64M"
  accelerator    = "tcg"
  headless       = true
  memory         = 256
  ssh_username   = "nobody"
  ssh_timeout    = "5s"
  vm_name        = "{name}"
  host_port_min  = {base}
  host_port_max  = {base + 1}
  boot_wait      = "1s"
  boot_keygroup_interval = "4s"
  boot_steps = [
    ["<enter>", "wake the prompt"],
    ["echo STEP-$${{USER}}OK<enter>", "say hello"],
    ["halt<enter>"],
  ]
}}
build {{ sources = ["source.qemu.g"] }}
""")
    try:
        run = Run(tpl, tmp_path / "cache", "--events", "-")
        code = run.finish(timeout=400)
    finally:
        holder.communicate("")
    events = [json.loads(line) for line in run.lines if line.startswith("{")]
    text = run.text
    assert code == 1, text  # GRUB runs no sshd: the build ends at the SSH timeout, after everything below
    said = [(e["time"], e.get("message", "")) for e in events]
    steps = [(t, m) for t, m in said if m.startswith("boot step ")]
    assert [m for _, m in steps] == ["boot step 1/3: wake the prompt", "boot step 2/3: say hello",
                                     "boot step 3/3: halt<enter>"], text
    # Step 1 is one key (~0.3 s under TCG): the gap to step 2 is the 4 s key-group interval.
    assert 4.0 <= steps[1][0] - steps[0][0] < 7.0, steps
    serial = [e["message"] for e in events if e.get("source") == "serial"]
    assert "STEP-OK" in serial, serial  # typed into GRUB (the echoed command line reads STEP-$USEROK)
    assert any("installer finished" in m for _, m in said), text  # GRUB's halt powered the VM off
    # QEMU read the ISO itself, by byte ranges; factory downloaded nothing.
    assert any(r.startswith("HEAD /grub.iso") for r in requests) and any("bytes=" in r for r in requests)
    assert not any(r.startswith("GET") and "bytes=" not in r for r in requests)
    assert not (tmp_path / "cache" / "iso").exists() or not any((tmp_path / "cache" / "iso").rglob("*.iso"))
    assert any(m == f"host port {base} is in use by another program: trying the next one" for _, m in said), text
    assert any(m == f"SSH forwarded from 127.0.0.1:{base + 1}" for _, m in said), text
    assert_nothing_left(tmp_path, name, f"127.0.0.1:{base + 1}")


@pytest.mark.vm
def test_skip_nat_mapping_and_error_cleanup_provisioner_before_teardown(tmp_path: Path,
                                                                       sshd: SshServer) -> None:
    name = f"cleanup-{uuid.uuid4().hex[:8]}"
    (tmp_path / "t").mkdir()
    image = grub_image(tmp_path / "t")
    key = sshd.keypair.write_private(tmp_path / "t" / "id_ed25519")
    marker, pids = tmp_path / "cleanup-ran", tmp_path / "qemu-pids"
    tpl = tmp_path / "t" / "t.pkr.hcl"
    tpl.write_text(grub_source(image.name, name, f"""
  skip_nat_mapping     = true
  ssh_host             = "127.0.0.1"
  ssh_port             = {sshd.port}
  ssh_username         = "{sshd.username}"
  ssh_private_key_file = "{key}"
""") + f"""
build {{
  sources = ["source.qemu.g"]
  provisioner "shell" {{
    inline = ["echo PROVISIONING", "exit 3"]
  }}
  error-cleanup-provisioner "shell" {{
    inline = ["echo CLEANUP-RAN > {marker}", "pgrep -f 'qemu-system.*{name}' > {pids} || true"]
  }}
}}
""")
    run = Run(tpl, tmp_path / "cache")
    code = run.finish(timeout=300)
    text = run.text
    assert code == 1, text
    assert re.search(rf"waiting up to \S+ for SSH on \S*127\.0\.0\.1:{sshd.port}\b", text), text
    assert "SSH forwarded" not in text and "hostfwd" not in text
    assert "[shell] PROVISIONING" in text and "running the error-cleanup-provisioner (shell)" in text, text
    assert marker.read_text() == "CLEANUP-RAN\n"
    # The VM was still running while the cleanup provisioner ran, and is gone after the build.
    assert pids.read_text().split(), "the VM was torn down before the error-cleanup-provisioner ran"
    assert qemu_pids(name) == []
    assert "inline script exited with status 3" in text, text


@pytest.mark.parametrize(("option", "message", "hint"), [
    ('boot_steps = [["<enter>", "one", "three"]]', "boot_steps[0] must be [keys] or [keys, description]",
     '["keys", "description"]'),
    ('boot_command = ["a"]\n  boot_steps = [["<enter>", "b"]]', "boot_command and boot_steps cannot both be set",
     "keep only one"),
    ('qemu_img_args {\n    shrink = ["--shrink"]\n  }', "qemu_img_args: unknown qemu-img subcommand 'shrink'",
     "keys: create, convert, resize"),
    ("skip_nat_mapping = true", "skip_nat_mapping needs ssh_host", "set ssh_host"),
    ('http_network_protocol = "udp"', "invalid http_network_protocol 'udp'", "tcp"),
])
def test_bad_boot_and_network_options_are_one_clear_error_at_their_line(tmp_path: Path, option: str,
                                                                         message: str, hint: str) -> None:
    (tmp_path / "t.pkr.hcl").write_text(f"""source "qemu" "x" {{
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_username = "u"
  {option}
}}
build {{ sources = ["source.qemu.x"] }}
""")
    proc = subprocess.run([sys.executable, "-m", "factory", "validate", "t.pkr.hcl"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert re.search(r"t\.pkr\.hcl:[56]:3 \(source\.qemu\.x\.\w+\): " + re.escape(message), out), out
    assert "hint:" in out and hint in out and "Traceback" not in out
    assert out.count("error:") == 1, out


@pytest.mark.vm
def test_debug_pauses_after_each_boot_step_until_enter_on_a_terminal(tmp_path: Path) -> None:
    name = f"dbg-{uuid.uuid4().hex[:8]}"
    tpl = _template(tmp_path, name, ssh_timeout="1s", extra='boot_wait = "1s"\n  boot_steps = '
                    '[["echo ONE<enter>", "first"], ["echo TWO<enter>", "second"]]')
    master, slave = pty.openpty()
    env = {**os.environ, "FACTORY_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "400"}
    proc = subprocess.Popen([sys.executable, "-m", "factory", "build", "-debug", str(tpl)], cwd=tpl.parent,
                            env=env, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    os.close(slave)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()

    def seen(text: str, timeout: float) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and proc.poll() is None:
            if any(text in line for line in list(lines)):
                return True
            time.sleep(0.1)
        return any(text in line for line in list(lines))

    try:
        assert seen("-debug: paused after boot step 1; press Enter", 120), "".join(lines)
        time.sleep(3)
        assert not any("boot step 2/2" in line for line in lines), "".join(lines)  # still waiting for Enter
        os.write(master, b"\n")
        assert seen("boot step 2/2: second", 30), "".join(lines)
        code = proc.wait(120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        os.close(master)
    reader.join(5)
    text = "".join(lines)
    assert code == 1, text  # GRUB runs no sshd
    assert re.search(r"\[serial\] ONE\s*$", text, re.M) and re.search(r"\[serial\] TWO\s*$", text, re.M), text
    assert qemu_pids(name) == []
