"""The shell provisioner over a real SSH connection."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import pytest
from fixtures.sshd import SshServer, running_sshd

from factory import secrets
from factory.comm.ssh import Communicator, connect
from factory.errors import FactoryError, Location
from factory.provision import ProvisionContext, run, run_with_meta
from factory.schema.provisioners import ShellProvisioner
from factory.template.model import ProvisionerSpec

# Walks up from the script to the sshd process serving this connection and kills it: a server-side drop
# (after a pause so the lines printed before it reach us, as they would before a real reboot).
KILL_SSHD = ('sleep 0.5; P=$PPID; while [ "$(cat /proc/$P/comm)" != sshd ]; do P=$(cut -d" " -f4 /proc/$P/stat); done; '
             'kill -9 $P; sleep 5')


def shell(**kw: object) -> ShellProvisioner:
    return ShellProvisioner(**kw)  # type: ignore[arg-type]


def test_inline_runs_with_packer_variables_and_cleans_up(comm: Communicator, ctx: ProvisionContext,
                                                         out: list[str], remote_dir: str) -> None:
    run("shell", shell(inline=["echo build=$PACKER_BUILD_NAME type=$PACKER_BUILDER_TYPE",
                               "echo \"greeting=$GREETING\"", "echo shebang=$(ps -o args= -p $$)"],
                       environment_vars=["GREETING=it's a=b"], env={"EXTRA": "x"},
                       remote_folder=remote_dir), comm, ctx)
    assert "build=cloud type=qemu" in out
    assert "greeting=it's a=b" in out
    assert any(line.startswith("shebang=/bin/sh -e ") for line in out)
    leftovers: list[str] = []
    comm.run(f"ls -A {remote_dir}", on_line=leftovers.append)
    assert leftovers == []


def test_inline_stops_at_the_first_failing_command(comm: Communicator, ctx: ProvisionContext, out: list[str]) -> None:
    with pytest.raises(FactoryError, match=r"exited with status 1; valid exit codes are \[0\]"):
        run("shell", shell(inline=["echo before", "false", "echo after"]), comm, ctx)
    assert "before" in out and "after" not in out


def test_scripts_run_in_order_and_skip_clean_keeps_them(comm: Communicator, ctx: ProvisionContext, out: list[str],
                                                         remote_dir: str, tmp_path: Path) -> None:
    (tmp_path / "one.sh").write_text("#!/bin/sh\necho one $0\n")
    (tmp_path / "two.sh").write_text("#!/bin/sh\necho two\n")
    run("shell", shell(scripts=["one.sh", str(tmp_path / "two.sh")], remote_folder=remote_dir,
                       remote_file="prov.sh", skip_clean=True), comm, ctx)
    assert f"one {remote_dir}/prov.sh" in out
    assert out.index(f"one {remote_dir}/prov.sh") < out.index("two")
    kept: list[str] = []
    comm.run(f"cat {remote_dir}/prov.sh", on_line=kept.append)
    assert kept == ["#!/bin/sh", "echo two"]


def test_single_script_and_missing_script(comm: Communicator, ctx: ProvisionContext, out: list[str],
                                          tmp_path: Path) -> None:
    (tmp_path / "s.sh").write_text("#!/bin/sh\necho from-script\n")
    run("shell", shell(script="s.sh"), comm, ctx)
    assert "from-script" in out
    with pytest.raises(FactoryError, match=r"cannot read script .*missing\.sh"):
        run("shell", shell(script="missing.sh"), comm, ctx)


def test_execute_command_placeholders(comm: Communicator, ctx: ProvisionContext, out: list[str]) -> None:
    run("shell", shell(inline=["echo \"$0 $FOO\""], environment_vars=["FOO=bar"],
                       execute_command="{{ .Vars }} sh {{.Path}}"), comm, ctx)
    assert any(line.endswith(".sh bar") for line in out)
    with pytest.raises(FactoryError, match=r"execute_command: unknown placeholder \{\{\.Nope\}\}"):
        run("shell", shell(inline=["true"], execute_command="{{ .Nope }} {{ .Path }}"), comm, ctx)


def test_use_env_var_file(comm: Communicator, ctx: ProvisionContext, out: list[str]) -> None:
    run("shell", shell(inline=["echo \"v=$V\""], environment_vars=["V=from file"], use_env_var_file=True),
        comm, ctx)
    assert "v=from file" in out


def test_valid_exit_codes(comm: Communicator, ctx: ProvisionContext) -> None:
    with pytest.raises(FactoryError, match="exited with status 3"):
        run("shell", shell(inline=["exit 3"]), comm, ctx)
    run("shell", shell(inline=["exit 3"], valid_exit_codes=[0, 3]), comm, ctx)


def test_sensitive_environment_values_are_masked(comm: Communicator, ctx: ProvisionContext, out: list[str]) -> None:
    secrets.register("pa55-word-from-var")
    run("shell", shell(inline=["echo token=$TOKEN"], environment_vars=["TOKEN=pa55-word-from-var"]), comm, ctx)
    assert "token=<sensitive>" in out
    assert "pa55-word-from-var" not in "\n".join(out)


def test_expect_disconnect_survives_a_dropped_connection_and_reconnects(
        comm: Communicator, ctx: ProvisionContext, out: list[str], tmp_path: Path) -> None:
    (tmp_path / "drop.sh").write_text(f"#!/bin/sh\necho dropping\n{KILL_SSHD}\n")
    (tmp_path / "after.sh").write_text("#!/bin/sh\necho after-reconnect\n")
    run("shell", shell(scripts=["drop.sh", "after.sh"], expect_disconnect=True), comm, ctx)
    assert "dropping" in out and "after-reconnect" in out
    assert out.index("dropping") < out.index("after-reconnect")


def test_unexpected_disconnect_fails_with_a_hint(comm: Communicator, ctx: ProvisionContext) -> None:
    with pytest.raises(FactoryError) as info:
        run("shell", shell(inline=[KILL_SSHD]), comm, ctx)
    assert "dropped while running" in info.value.message
    assert info.value.hint and "expect_disconnect" in info.value.hint
    assert comm.run("true") == 0


def test_pause_after(comm: Communicator, ctx: ProvisionContext) -> None:
    start = time.monotonic()
    run("shell", shell(inline=["true"], pause_after="1s"), comm, ctx)
    assert time.monotonic() - start >= 1.0


def spec(config: ShellProvisioner, **meta: object) -> ProvisionerSpec:
    fields: dict[str, object] = {"type": "shell", "name": "", "config": config, "only": (), "except_": (),
                                 "override": {}, "pause_before": 0.0, "max_retries": 0, "timeout": None,
                                 "where": Location("build.pkr.hcl", 7)}
    fields.update(meta)
    return ProvisionerSpec(**fields)  # type: ignore[arg-type]


def test_meta_timeout_stops_a_hanging_script(comm: Communicator, ctx: ProvisionContext) -> None:
    start = time.monotonic()
    with pytest.raises(FactoryError, match="timed out") as info:
        run_with_meta(spec(shell(inline=["sleep 30"]), timeout=1.0), comm, ctx)
    assert time.monotonic() - start < 6
    assert info.value.where == Location("build.pkr.hcl", 7)


def test_meta_max_retries_and_pause_before(comm: Communicator, ctx: ProvisionContext, out: list[str],
                                           remote_dir: str) -> None:
    flaky = shell(inline=[f"if [ ! -e {remote_dir}/tried ]; then touch {remote_dir}/tried; exit 1; fi",
                          "echo second-try-ok"])
    start = time.monotonic()
    run_with_meta(spec(flaky, max_retries=1, pause_before=0.5), comm, ctx)
    assert time.monotonic() - start >= 0.5
    assert "second-try-ok" in out
    assert any("retrying (1/1)" in line for line in out)
    with pytest.raises(FactoryError, match=r"after 2 attempts"):
        run_with_meta(spec(shell(inline=["exit 9"]), max_retries=1), comm, ctx)


def test_unknown_type_and_missing_communicator(ctx: ProvisionContext) -> None:
    with pytest.raises(FactoryError, match="'no-such-provisioner' is not implemented") as info:
        run("no-such-provisioner", shell(), None, ctx)
    assert info.value.hint and "shell-local" in info.value.hint
    with pytest.raises(FactoryError, match="needs SSH"):
        run("shell", shell(inline=["true"]), None, dataclasses.replace(ctx))


@pytest.mark.parametrize("content", [
    # sh stops reading at `exit 0`: what follows is data, never parsed.
    pytest.param(b"#!/bin/sh\nexit 0\n'quotes' \"d\" $HOME `x` !h 100% \\n \\\\ \r\n" + bytes(range(1, 256)),
                 id="printf-every-byte"),
    pytest.param(b"#!/bin/sh\nexit 0\n" + b"x%'\n" * 40_000, id="stdin-too-big-for-argv"),
    pytest.param(b"#!/bin/sh\nexit 0\na NUL: \x00\n", id="stdin-nul-byte"),
])
def test_the_script_arrives_byte_for_byte(comm: Communicator, ctx: ProvisionContext, remote_dir: str,
                                           tmp_path: Path, content: bytes) -> None:
    """Written by the shell that runs it (printf, or cat from stdin when it cannot fit in argv or holds NUL)."""
    (tmp_path / "s.sh").write_bytes(content)
    run("shell", shell(script="s.sh", remote_folder=remote_dir, remote_file="s.sh", skip_clean=True, binary=True),
        comm, ctx)
    got = tmp_path / "got.sh"
    comm.download(f"{remote_dir}/s.sh", got)
    assert got.read_bytes() == content
    assert got.stat().st_mode & 0o755 == 0o755


def test_execute_command_without_chmod_still_finds_an_executable(comm: Communicator, ctx: ProvisionContext,
                                                                  out: list[str]) -> None:
    run("shell", shell(inline=["echo direct"], execute_command="{{.Vars}} {{.Path}}"), comm, ctx)
    assert "direct" in out


def test_missing_remote_folder_is_an_upload_error(comm: Communicator, ctx: ProvisionContext, out: list[str]) -> None:
    with pytest.raises(FactoryError, match=r"cannot upload inline script to /nonexistent-dir/x\.sh") as err:
        run("shell", shell(inline=["echo never"], remote_folder="/nonexistent-dir", remote_file="x.sh"), comm, ctx)
    assert err.value.hint and "remote_folder" in err.value.hint
    assert "never" not in out
    assert any("/nonexistent-dir/x.sh" in line for line in out)  # the guest shell's own words are shown


def test_small_scripts_are_written_by_a_builtin_and_big_or_binary_ones_through_stdin() -> None:
    from factory.provision.shell import write_file_command

    small, stdin = write_file_command(b"#!/bin/sh\necho 'hi' 100%\n", "/tmp/a b.sh", executable=False)
    assert stdin is None and small == "umask 022; printf '#\\041/bin/sh\\necho \\047hi\\047 100%%\\n' > '/tmp/a b.sh'"
    big, stdin = write_file_command(b"x" * 200_000, "/tmp/s.sh", executable=True)
    assert stdin == b"x" * 200_000 and big == "umask 022; cat > /tmp/s.sh && chmod 755 /tmp/s.sh"
    assert write_file_command(b"a\x00b", "/tmp/s.sh", executable=False)[1] == b"a\x00b"


def test_on_a_pty_a_big_script_goes_by_the_transfer_method(sshd: SshServer, ctx: ProvisionContext, remote_dir: str,
                                                           tmp_path: Path, out: list[str]) -> None:
    content = b"#!/bin/sh\necho on-a-pty\nexit 0\n" + bytes(range(1, 256)) * 500  # too big for argv: not via cat
    (tmp_path / "s.sh").write_bytes(content)
    with connect(dataclasses.replace(sshd.settings(), pty=True)) as comm:
        run("shell", shell(script="s.sh", remote_folder=remote_dir, remote_file="s.sh", skip_clean=True), comm, ctx)
        comm.download(f"{remote_dir}/s.sh", tmp_path / "got.sh")
    assert (tmp_path / "got.sh").read_bytes() == content
    assert "on-a-pty" in out


def test_crlf_scripts_are_converted_unless_binary(comm: Communicator, ctx: ProvisionContext, out: list[str],
                                                  remote_dir: str, tmp_path: Path) -> None:
    (tmp_path / "win.sh").write_bytes(b"#!/bin/sh\r\necho converted\r\n")
    run("shell", shell(script="win.sh"), comm, ctx)
    assert "converted" in out
    run("shell", shell(script="win.sh", binary=True, remote_folder=remote_dir, remote_file="w.sh", skip_clean=True,
                       execute_command="true"), comm, ctx)
    comm.download(f"{remote_dir}/w.sh", tmp_path / "got.sh")
    assert (tmp_path / "got.sh").read_bytes() == b"#!/bin/sh\r\necho converted\r\n"


def test_upload_errors_are_named_on_a_guest_without_sftp(tmp_path: Path, ctx: ProvisionContext) -> None:
    with running_sshd(tmp_path / "scp-only", sftp=False) as server, \
            connect(server.settings(file_transfer="scp")) as comm:
        run("shell", shell(inline=["echo fine"]), comm, ctx)
        with pytest.raises(FactoryError, match=r"cannot upload inline script to /nonexistent-dir/x\.sh"):
            run("shell", shell(inline=["echo never"], remote_folder="/nonexistent-dir", remote_file="x.sh"), comm,
                ctx)
