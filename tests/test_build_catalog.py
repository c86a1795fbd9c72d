"""`iso = "<catalog name>"` end to end: factory renders the autoinstall config itself and either remasters the
ISO with it (`install_method = "media"`) or boots the ISO's kernel and initrd with arguments pointing at its HTTP
server (`"direct-kernel"`). The release is the test installer (tests/fixtures/installer.py: Ubuntu's layout, a
busybox initrd that honours subiquity's switches and the autoinstall identity, ssh and late-commands sections),
found through FACTORY_ISOS_DIR. Then the installed disk boots, SSH connects with factory's ephemeral key, a shell
provisioner runs, and the qcow2 artifact is written. While the installer runs, its own "sshd" listens on port 22
in the guest; every port of the build's host_port_min..max range is probed all that time and none may answer
(factory forwards SSH only once the installed system boots).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml
from fixtures.installer import AUTOINSTALL_AWK, CATALOG_NAME, IDENTITY_SEED, InstallerISO

from factory.comm.keys import KeyPair
from factory.media.catalog import InstallerFamily
from factory.media.preseed import PreseedVars, hash_password, render

PASSWORD_HASH = hash_password("catalog-build-pw", salt="factorytestsalt0")

TEMPLATE = """
source "qemu" "catalog" {{
  iso              = "{name}"
  install_method   = "{method}"
  preseed_vars     = {{
    hostname      = "{hostname}"
    password_hash = "{password_hash}"
    late_commands = "echo from-late-commands > /target/etc/factory-late-command"
  }}
  disk_size        = "3G"
  efi_boot         = true
  machine_type     = "q35"
  accelerator      = "tcg"
  cpus             = 2
  memory           = 1024
  headless         = true
  ssh_username     = "ops"
  ssh_timeout      = "10m"
  host_port_min    = {port_min}
  host_port_max    = {port_max}
  output_directory = "out"
  vm_name          = "catalog.qcow2"
}}
build {{
  sources = ["source.qemu.catalog"]
  provisioner "shell" {{
    inline = [
      "echo HOST=$(hostname) USER=$(id -un) GROUPS=$(id -Gn | tr ' ' ,)",
      "echo SUDO=$(sudo -n true && echo ok)",
      "echo SHADOW=$(sudo -n getent shadow ops | cut -d: -f2 | sha256sum | cut -c1-16)",
      "echo LATE=$(cat /etc/factory-late-command)",
    ]
  }}
}}
"""


# One range per test: under xdist the other test's installed system may be forwarded at the same time.
PORTS = {"media": (47900, 47909), "direct-kernel": (47910, 47919)}


@dataclass
class PortWatch:
    """Probes the build's SSH host ports while the installer runs: any answer there is a forward into it."""

    ports: range
    rounds: int = 0
    answers: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            for port in self.ports:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                        sock.settimeout(2)
                        data = sock.recv(200)
                        self.answers.append(f"{port}: {data.decode(errors='replace').strip()!r}")
                except OSError:
                    pass  # refused: nothing forwarded, as it must be
            self.rounds += 1
            self.stop.wait(1)


@dataclass
class BuildRun:
    returncode: int
    out: str
    seconds: float
    watch: PortWatch
    rounds_while_installer_sshd_up: int


def run_build(tmp_path: Path, installer: InstallerISO, method: str, hostname: str) -> BuildRun:
    """factory build of the catalog template, streaming its output; the SSH port is watched during install."""
    port_min, port_max = PORTS[method]
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE.format(name=CATALOG_NAME, method=method, hostname=hostname,
                                                        password_hash=PASSWORD_HASH, port_min=port_min,
                                                        port_max=port_max))
    # Unbuffered: the installer's lines must arrive while it runs, for the port watch to line up with them.
    env = {**os.environ, "COLUMNS": "300", "FACTORY_ISOS_DIR": str(installer.catalog), "PYTHONUNBUFFERED": "1"}
    start = time.monotonic()
    # --debug shows the guest's serial console: the test installer reports what it did there.
    proc = subprocess.Popen([sys.executable, "-m", "factory", "build", "--debug", "t.pkr.hcl"], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    watch = PortWatch(range(port_min, port_max + 1))
    threading.Thread(target=watch.run, daemon=True).start()
    rounds_at_sshd = -1
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append(line)
            if "installer sshd listening on port 22" in line and rounds_at_sshd < 0:
                rounds_at_sshd = watch.rounds
            if "installer finished" in line:
                watch.stop.set()
        proc.wait(timeout=60)
    finally:
        watch.stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    rounds_during = watch.rounds - rounds_at_sshd if rounds_at_sshd >= 0 else 0
    return BuildRun(proc.returncode, "".join(lines), time.monotonic() - start, watch, rounds_during)


def summary(out: str) -> str:
    """factory's own lines, then the tail of the serial console: what a failure needs to be understood."""
    lines = out.splitlines()
    serial = [line for line in lines if "[serial]" in line]
    return "\n".join([*[line for line in lines if "[serial]" not in line][-60:], "--- serial ---", *serial[-40:]])


def check_installed_and_provisioned(run: BuildRun, tmp_path: Path, hostname: str) -> None:
    out = run.out
    assert run.returncode == 0, summary(out)
    # The installer really ran unattended from factory's config, while its own sshd was unreachable from the host.
    assert "factory-test-installer: identity ops@" + hostname + " with 1 ssh key(s)" in out, summary(out)
    assert "factory-test-installer: late-commands: 3 run" in out
    assert "factory-test-installer: installation complete, powering off" in out
    assert out.index("installer finished") < out.index("VM started (run")
    assert run.rounds_while_installer_sshd_up >= 3, "the SSH ports were not watched while the installer ran"
    assert run.watch.answers == [], f"the installer's sshd was reachable from the host: {run.watch.answers}"
    # The installed system: identity from autoinstall.identity, key from autoinstall.ssh, late-commands applied.
    assert f"HOST={hostname} USER=ops GROUPS=ops,adm,sudo" in out
    assert "SUDO=ok" in out
    # The hash itself is masked in factory's output (a secret): compare a digest of it.
    shadow = hashlib.sha256(f"{PASSWORD_HASH}\n".encode()).hexdigest()[:16]
    assert f"SHADOW={shadow}" in out
    assert "LATE=from-late-commands" in out
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(tmp_path / "out/catalog.qcow2")],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 3 * 1024**3


@pytest.mark.vm
def test_catalog_iso_remastered_media_installs_and_provisions(test_installer_iso: InstallerISO,
                                                               tmp_path: Path) -> None:
    run = run_build(tmp_path, test_installer_iso, "media", "catalog-media")
    print(f"\ncatalog build (media): {run.seconds:.0f}s")
    assert "unattended factory test installer (autoinstall) media made" in run.out, summary(run.out)
    # subiquity's switches reached the installer through the remastered GRUB menu.
    assert "unattended config /cdrom/nocloud/" in run.out
    check_installed_and_provisioned(run, tmp_path, "catalog-media")


@pytest.mark.vm
def test_catalog_iso_direct_kernel_fetches_the_config_over_http(test_installer_iso: InstallerISO,
                                                                 tmp_path: Path) -> None:
    run = run_build(tmp_path, test_installer_iso, "direct-kernel", "catalog-direct")
    print(f"\ncatalog build (direct-kernel): {run.seconds:.0f}s")
    match = re.search(r"fetched user-data from (http://10\.0\.2\.2:\d+/nocloud/)", run.out)
    assert match, summary(run.out)
    assert "GET /nocloud/user-data" in run.out  # served by the build's own HTTP server
    check_installed_and_provisioned(run, tmp_path, "catalog-direct")


def test_test_installer_reads_factorys_autoinstall_config(tmp_path: Path) -> None:
    """The contract between preseeds/autoinstall and the test installer, checked with the same busybox awk."""
    key = KeyPair.generate()
    pairs = ["username=ops", f"password_hash={PASSWORD_HASH}", f"ssh_authorized_keys={key.public_openssh}",
             "hostname=web-1", "late_commands=echo \"it's\" > /target/etc/x"]
    rendered = render(InstallerFamily.SUBIQUITY, PreseedVars.from_pairs(pairs))
    (tmp_path / "user-data").write_bytes(rendered.files["nocloud/user-data"])
    (tmp_path / "ai.awk").write_text(AUTOINSTALL_AWK)
    ai = tmp_path / "ai"
    ai.mkdir()
    subprocess.run(["busybox", "awk", "-f", str(tmp_path / "ai.awk"), str(tmp_path / "user-data")],
                   env={"AI": str(ai)}, check=True)
    read = {p.name: p.read_text() for p in ai.iterdir()}
    assert read["username"] == "ops\n" and read["hostname"] == "web-1\n"
    assert read["password"] == PASSWORD_HASH + "\n" and read["shutdown"] == "poweroff\n"
    assert read["keys"] == key.public_openssh + "\n"
    assert read["late"].splitlines()[-1] == "echo \"it's\" > /target/etc/x"
    seed = subprocess.run(["busybox", "sh", "-c", IDENTITY_SEED.replace("AI=/tmp/ai", f"AI={ai}")],
                          check=True, capture_output=True, text=True).stdout
    config = yaml.safe_load(seed)
    assert seed.startswith("#cloud-config\n") and config["hostname"] == "web-1"
    assert config["users"] == [{"name": "ops", "gecos": "ops", "groups": ["adm", "sudo"], "shell": "/bin/bash",
                                "lock_passwd": False, "passwd": PASSWORD_HASH,
                                "ssh_authorized_keys": [key.public_openssh]}]
    assert config["ssh_pwauth"] is True  # allow-pw: ssh_password_auth defaults to true


def test_test_installer_reads_block_style_yaml(tmp_path: Path) -> None:
    """A hand-written autoinstall (block lists, plain and single-quoted scalars) reads the same way."""
    (tmp_path / "user-data").write_text(
        "#cloud-config\nautoinstall:\n  version: 1\n  identity:\n    hostname: box # the name\n"
        "    username: 'o''brien'\n    password: '$6$x$y'\n  ssh:\n    allow-pw: false\n    authorized-keys:\n"
        "      - ssh-ed25519 AAAA k1\n      - \"ssh-ed25519 BBBB k2\"\n  late-commands:\n  - touch /target/a\n"
        "  - 'echo \"b\" > /target/b'\n  shutdown: reboot\nother:\n  identity:\n    username: nobody\n")
    (tmp_path / "ai.awk").write_text(AUTOINSTALL_AWK)
    ai = tmp_path / "ai"
    ai.mkdir()
    subprocess.run(["busybox", "awk", "-f", str(tmp_path / "ai.awk"), str(tmp_path / "user-data")],
                   env={"AI": str(ai)}, check=True)
    read = {p.name: p.read_text().splitlines() for p in ai.iterdir()}
    assert read == {"hostname": ["box"], "username": ["o'brien"], "password": ["$6$x$y"], "allow_pw": ["false"],
                    "keys": ["ssh-ed25519 AAAA k1", "ssh-ed25519 BBBB k2"],
                    "late": ["touch /target/a", 'echo "b" > /target/b'], "shutdown": ["reboot"]}


def test_bad_preseed_vars_fail_before_anything_is_fetched_or_made(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE.format(name=CATALOG_NAME, method="media", hostname="bad_name",
                                                        password_hash=PASSWORD_HASH, port_min=47900,
                                                        port_max=47909))
    # No FACTORY_ISOS_DIR: the release is not even looked up before the variables are known to be good.
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "t.pkr.hcl"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode != 0
    assert ("t.pkr.hcl:5:3 (source.qemu.catalog.preseed_vars): preseed_vars.hostname: 'bad_name' is not a valid "
            "host name") in proc.stderr
    assert "Traceback" not in proc.stderr and "Fetching" not in proc.stderr + proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.pkr.hcl"]


def test_validate_names_file_line_for_an_unknown_release_and_bad_preseed_vars(tmp_path: Path) -> None:
    template = TEMPLATE.format(name="ubuntu-24.4", method="media", hostname="web1", password_hash=PASSWORD_HASH,
                               port_min=47900, port_max=47909)
    (tmp_path / "t.pkr.hcl").write_text(template.replace('hostname      = "web1"', 'hosname = "web1"'))
    proc = subprocess.run([sys.executable, "-m", "factory", "validate", "t.pkr.hcl"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"})
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert ("t.pkr.hcl:3:3 (source.qemu.catalog.iso): unknown release 'ubuntu-24.4': no ubuntu-24.4.toml in the "
            "ISO catalog") in proc.stderr
    assert "hint: did you mean 'ubuntu-24.04'?" in proc.stderr
    assert "t.pkr.hcl:5:3 (source.qemu.catalog.preseed_vars): preseed_vars.hosname: unknown variable" in proc.stderr
    assert "hint: did you mean 'hostname'?" in proc.stderr
    # The test release is found through FACTORY_ISOS_DIR; no password in preseed_vars is fine (the build adds one).
    catalog = tmp_path / "cat"
    catalog.mkdir()
    (catalog / f"{CATALOG_NAME}.toml").write_text(
        f'name = "{CATALOG_NAME}"\ntitle = "T"\nfamily = "autoinstall"\nvolume_id = "V"\nkernel = "k"\n'
        f'initrd = "i"\nboot_configs = ["boot/grub/grub.cfg"]\n[iso]\nfilename = "t.iso"\nurls = ["/t.iso"]\n'
        f'sha256 = "{"0" * 64}"\n')
    good = TEMPLATE.format(name=CATALOG_NAME, method="direct-kernel", hostname="web1", password_hash="",
                           port_min=47900, port_max=47909).replace('    password_hash = ""\n', "")
    (tmp_path / "t.pkr.hcl").write_text(good)
    proc = subprocess.run([sys.executable, "-m", "factory", "validate", "t.pkr.hcl"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "300", "FACTORY_ISOS_DIR": str(catalog)})
    assert proc.returncode == 0, proc.stderr
