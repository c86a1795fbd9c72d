"""shell-local runs on the host with Packer's variables (shared with the shell-local post-processor)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest

from factory import secrets
from factory.errors import FactoryError
from factory.provision import ProvisionContext, run
from factory.provision.shell_local import run_local
from factory.schema.provisioners import ShellLocalProvisioner


def local(**kw: object) -> ShellLocalProvisioner:
    return ShellLocalProvisioner(**kw)  # type: ignore[arg-type]


def test_inline_with_packer_and_user_environment(ctx: ProvisionContext, out: list[str]) -> None:
    ctx = dataclasses.replace(ctx, extra_env={"PACKER_HTTP_ADDR": "10.0.2.2:8100"})
    run("shell-local", local(inline=["echo name=$PACKER_BUILD_NAME type=$PACKER_BUILDER_TYPE http=$PACKER_HTTP_ADDR",
                                     "echo \"q=$QUOTED m=$MAPPED\"", "echo pid=$$ >/dev/null"],
                             environment_vars=["QUOTED=it's"], env={"MAPPED": "yes"}), None, ctx)
    assert "name=cloud type=qemu http=10.0.2.2:8100" in out
    assert "q=it's m=yes" in out


def test_command_script_scripts_and_cwd(ctx: ProvisionContext, out: list[str], tmp_path: Path) -> None:
    run_local(local(command="echo cmd-ran; pwd"), ctx)
    assert "cmd-ran" in out and str(tmp_path) in out
    for name in ("one", "two"):
        (tmp_path / f"{name}.sh").write_text(f"#!/bin/sh\necho {name}\n")
        (tmp_path / f"{name}.sh").chmod(0o755)
    run_local(local(scripts=["one.sh", "two.sh"]), ctx)
    assert out.index("one") < out.index("two")
    (tmp_path / "plain.sh").write_text("echo plain\n")  # not executable: Packer runs the path as is
    with pytest.raises(FactoryError, match="exited with status 126") as info:
        run_local(local(script="plain.sh"), ctx)
    assert info.value.hint and "chmod +x" in info.value.hint
    with pytest.raises(FactoryError, match=r"script .*absent\.sh does not exist"):
        run_local(local(script="absent.sh"), ctx)


def test_execute_command_and_exit_codes(ctx: ProvisionContext, out: list[str]) -> None:
    run_local(local(inline=["echo via-bash $X"], environment_vars=["X=1"],
                    execute_command=["/bin/bash", "-c", "{{.Vars}} /bin/sh {{.Script}}"]), ctx)
    assert "via-bash 1" in out
    with pytest.raises(FactoryError, match=r"shell-local: .* exited with status 4; valid exit codes are \[0\]"):
        run_local(local(inline=["exit 4"]), ctx)
    run_local(local(inline=["exit 4"], valid_exit_codes=[4]), ctx)


def test_only_on_skips_other_systems(ctx: ProvisionContext, out: list[str], tmp_path: Path) -> None:
    run_local(local(inline=[f"touch {tmp_path}/ran"], only_on=["darwin", "windows"]), ctx)
    assert not (tmp_path / "ran").exists()
    assert any("only_on" in line for line in out)
    run_local(local(inline=[f"touch {tmp_path}/ran"], only_on=["linux"]), ctx)
    assert (tmp_path / "ran").exists()


def test_sensitive_values_masked_and_temp_scripts_removed(ctx: ProvisionContext, out: list[str], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # A temp folder of this test's own: /tmp is shared with the other xdist workers, whose builds' shell-local
    # folders (some wait for minutes) would appear there meanwhile and look like ours left behind.
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    secrets.register("local-s3cret-value")
    run_local(local(inline=["echo key=$KEY"], environment_vars=["KEY=local-s3cret-value"]), ctx)
    assert "key=<sensitive>" in out
    assert any(f"Running local shell script: {scratch}/factory-shell-local-" in line for line in out), out
    assert list(scratch.iterdir()) == []


def test_bad_environment_entry_is_a_user_error(ctx: ProvisionContext) -> None:
    with pytest.raises(FactoryError, match="'NOVALUE' is not KEY=VALUE"):
        run_local(local(inline=["true"], environment_vars=["NOVALUE"]), ctx)
