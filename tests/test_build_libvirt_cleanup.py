"""`factory build` of `source "libvirt"` on a real qemu:///system, for what goes wrong: whatever ends the build
(a failure, Ctrl-C, SIGTERM), no domain, transient volume or port forward is left; a name collision is an error
that leaves the other domain or volume alone; bad input (missing pool or volume, an unreachable URI, a socket
the user may not open, a session URI with no user daemon) is one clear message before anything is created.

The domain boots a 1 MiB blank disk: the firmware finds nothing to boot and waits, which is all these tests need
of a guest (no Linux boot), so they are quick."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import libvirt
import pytest

from tests.fixtures.guest import free_port
from tests.fixtures.libvirtd import LibvirtPool, PrivateDaemon, domains

TEMPLATE = """
variable "uri" { type = string }
variable "pool" { type = string }
variable "domain_name" {
  type    = string
  default = null
}
variable "artifact_name" {
  type    = string
  default = null
}
variable "ssh_timeout" {
  type    = string
  default = "10m"
}

source "libvirt" "blank" {
  libvirt_uri = var.uri
  domain_name = var.domain_name
  domain_type = "qemu"
  memory      = 128
  volume {
    alias = "artifact"
    name  = var.artifact_name
    pool  = var.pool
    bus   = "virtio"
    source {
      type = "external"
      urls = ["blank.img"]
    }
  }
  volume {
    pool = var.pool
    bus  = "virtio"
    source {
      type      = "cloud-init"
      user_data = "#cloud-config\\n"
    }
  }
  communicator {
    ssh_username = "nobody"
    ssh_timeout  = var.ssh_timeout
  }
  host_port_min    = 47500
  host_port_max    = 47600
  output_directory = "out"
}

build {
  sources = ["source.libvirt.blank"]
}
"""


def _project(tmp_path: Path) -> Path:
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE)
    with (tmp_path / "blank.img").open("wb") as fh:
        fh.truncate(1 << 20)
    return tmp_path


def _args(pool: LibvirtPool, **extra: str) -> list[str]:
    args = ["-var", f"uri={pool.uri}", "-var", f"pool={pool.name}"]
    for key, value in extra.items():
        args += ["-var", f"{key}={value}"]
    return [*args, "t.pkr.hcl"]


def _build(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "factory", "build", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def _listening(port: int) -> bool:
    return f"0100007F:{port:04X} 00000000:0000 0A" in Path("/proc/net/tcp").read_text()


def _port_of(out: str) -> int:
    line = next(line for line in out.splitlines() if "SSH will be forwarded from 127.0.0.1:" in line)
    return int(line.split("127.0.0.1:")[1].split()[0])


@pytest.mark.vm
@pytest.mark.parametrize("how", ["failure", "SIGINT", "SIGTERM"])
def test_nothing_is_left_after_failure_ctrl_c_or_sigterm(how: str, libvirt_pool: LibvirtPool,
                                                        tmp_path: Path) -> None:
    before = domains(libvirt_pool.uri)
    project = _project(tmp_path)
    extra = {"ssh_timeout": "3s"} if how == "failure" else {}
    proc = subprocess.Popen([sys.executable, "-m", "factory", "build", *_args(libvirt_pool, **extra)], cwd=project,
                            env={**os.environ, "COLUMNS": "300"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "VM started" in line:
            break
    out = "".join(lines)
    assert "VM started" in out, out
    port = _port_of(out)
    # This build's domain by its name: other tests' domains come and go on the same daemon (xdist workers).
    name = re.search(r"serial console: \S*/(factory-blank-[0-9a-f]+)\.serial\.log", out)
    assert name, out
    assert name.group(1) in [n for n in domains(libvirt_pool.uri) if n not in before]
    assert len(libvirt_pool.volumes()) == 2
    deadline = time.monotonic() + 60
    while not _listening(port):     # the forward is QEMU's: it listens once the domain's QEMU runs
        assert time.monotonic() < deadline, "the SSH forward never listened"
        time.sleep(0.5)
    if how != "failure":
        proc.send_signal(getattr(signal, how))
    rest = proc.stdout.read()
    code = proc.wait(timeout=300)
    out += rest
    assert code != 0, out
    if how == "failure":
        assert "timed out" in out or "SSH" in out, out
    else:   # the interrupt ran the cleanups, as the runner does for Ctrl-C and SIGTERM alike
        assert "cleaning up: stop VM (run), release port" in out, out
    assert name.group(1) not in domains(libvirt_pool.uri), out
    assert libvirt_pool.volumes() == [], out
    assert not _listening(port)
    assert not (project / "out").exists() and not list(project.glob(".out.*"))


def test_name_collisions_are_errors_and_leave_the_other_alone(libvirt_pool: LibvirtPool, tmp_path: Path) -> None:
    project = _project(tmp_path)
    conn = libvirt.open(libvirt_pool.uri)
    theirs = f"{libvirt_pool.name}-theirs"
    dom = conn.defineXML(f"<domain type='qemu'><name>{theirs}</name><memory unit='MiB'>64</memory><os>"
                         "<type arch='x86_64'>hvm</type></os></domain>")
    try:
        done = _build(project, _args(libvirt_pool, domain_name=theirs))
        assert done.returncode == 1
        assert f"a libvirt domain named {theirs!r} already exists" in done.stderr
        assert "factory never replaces a domain it did not create" in done.stderr
        assert theirs in domains(libvirt_pool.uri) and libvirt_pool.volumes() == []
    finally:
        dom.undefine()
        conn.close()
    libvirt_pool.virsh("vol-create-as", libvirt_pool.name, "their-disk", "1M")
    done = _build(project, _args(libvirt_pool, artifact_name="their-disk"))
    assert done.returncode == 1
    assert f"volume 'their-disk' already exists in pool {libvirt_pool.name!r}" in done.stderr
    assert libvirt_pool.volumes() == ["their-disk"]   # neither replaced nor removed, and nothing else made


def test_missing_pool_and_volume_are_one_clear_message(libvirt_pool: LibvirtPool, tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = _build(project, ["-var", f"uri={libvirt_pool.uri}", "-var", "pool=factory-no-such-pool", "t.pkr.hcl"])
    assert done.returncode == 1
    assert "libvirt storage pool 'factory-no-such-pool' does not exist on qemu:///system" in done.stderr
    assert "virsh pool-define-as" in done.stderr and "Traceback" not in done.stderr
    template = (project / "t.pkr.hcl").read_text()
    (project / "t.pkr.hcl").write_text(template.replace('name  = var.artifact_name', 'name  = "gone"').replace(
        """    source {
      type = "external"
      urls = ["blank.img"]
    }
""", ""))
    done = _build(project, _args(libvirt_pool))
    assert done.returncode == 1
    assert f"volume 'gone' does not exist in libvirt pool {libvirt_pool.name!r}" in done.stderr
    assert "virsh vol-list" in done.stderr and libvirt_pool.volumes() == []


def test_unreachable_uri_and_session_without_daemon_say_what_to_do(tmp_path: Path) -> None:
    project = _project(tmp_path)
    done = _build(project, ["-var", f"uri=qemu+ssh://nobody@127.0.0.1:{free_port()}/system?no_verify=1",
                            "-var", "pool=default", "t.pkr.hcl"])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot connect to libvirt at qemu+ssh://nobody@127.0.0.1" in done.stderr
    assert "check that `ssh` reaches the host" in done.stderr
    done = _build(project, ["-var", "uri=qemu+unix:///session?socket=/nonexistent/libvirt-sock",
                            "-var", "pool=default", "t.pkr.hcl"])
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "qemu:///session needs a libvirt daemon of your user: start it with `libvirtd -d`" in done.stderr


def test_a_socket_the_user_may_not_open_is_permission_denied_with_a_hint(tmp_path: Path) -> None:
    """A daemon socket of mode 000 and a build without CAP_DAC_OVERRIDE (root keeps it otherwise): the kernel's
    own EACCES on connect, as a user outside the `libvirt` group gets on Debian's 0770 socket."""
    project = _project(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "libvirt-sock"))
    sock.listen()
    os.chmod(tmp_path / "libvirt-sock", 0)
    env = {**os.environ, "COLUMNS": "300"}
    with sock:
        done = subprocess.run(["setpriv", "--bounding-set", "-dac_override,-dac_read_search", sys.executable, "-m",
                               "factory", "build", "-var", f"uri=qemu+unix:///system?socket={tmp_path}/libvirt-sock",
                               "-var", "pool=default", "t.pkr.hcl"], cwd=project, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "cannot connect to libvirt at qemu+unix:///system" in done.stderr and "Permission denied" in done.stderr
    assert "join the `libvirt` group, or use qemu:///session" in done.stderr


@pytest.mark.vm
def test_libvirtd_dying_mid_build_is_one_clear_message_and_clean_removes_the_rest(
        private_session_daemon: tuple[PrivateDaemon, LibvirtPool], tmp_path: Path) -> None:
    daemon, pool = private_session_daemon
    project = _project(tmp_path)
    proc = subprocess.Popen([sys.executable, "-m", "factory", "build", *_args(pool)], cwd=project,
                            env={**os.environ, "COLUMNS": "300"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "VM started" in line:
            break
    assert "VM started" in "".join(lines), "".join(lines)
    daemon.kill()
    out = "".join(lines) + proc.stdout.read()
    assert proc.wait(timeout=300) == 1, out
    assert "Traceback" not in out
    assert f"the connection to libvirt at {daemon.uri} was lost" in out and "did libvirtd stop?" in out, out
    assert f"restart libvirtd, then `factory clean --libvirt {daemon.uri}`" in out, out
    # The daemon is back: the domain (its QEMU ran on) and the build's volumes are what clean removes.
    daemon.start()
    assert [d for d in domains(daemon.uri) if d.startswith("factory-blank-")]
    done = subprocess.run([sys.executable, "-m", "factory", "clean", "--libvirt", daemon.uri], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "removed domain factory-blank-" in done.stdout
    assert domains(daemon.uri) == [] and pool.volumes() == []
