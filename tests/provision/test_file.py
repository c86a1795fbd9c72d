"""The file provisioner both ways over SFTP, with Packer's trailing-slash semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.comm.ssh import Communicator
from factory.errors import FactoryError
from factory.provision import ProvisionContext, run
from factory.schema.provisioners import FileProvisioner


def file(**kw: object) -> FileProvisioner:
    return FileProvisioner(**kw)  # type: ignore[arg-type]


def remote_files(comm: Communicator, root: str) -> list[str]:
    lines: list[str] = []
    comm.run(f"cd {root} && find . -type f | sort", on_line=lines.append)
    return lines


def remote_text(comm: Communicator, path: str) -> str:
    lines: list[str] = []
    assert comm.run(f"cat {path}", on_line=lines.append) == 0
    return "\n".join(lines)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "conf"
    (src / "sub").mkdir(parents=True)
    (src / "a.txt").write_text("A")
    (src / "sub" / "b.txt").write_text("B")
    return src


def test_upload_file_to_a_path_and_into_a_directory(comm: Communicator, ctx: ProvisionContext, tmp_path: Path,
                                                    remote_dir: str) -> None:
    (tmp_path / "app.cfg").write_text("key=1")
    run("file", file(source="app.cfg", destination=f"{remote_dir}/renamed.cfg"), comm, ctx)
    run("file", file(source="app.cfg", destination=f"{remote_dir}/"), comm, ctx)
    comm.run(f"mkdir {remote_dir}/existing")
    run("file", file(source="app.cfg", destination=f"{remote_dir}/existing"), comm, ctx)
    assert remote_files(comm, remote_dir) == ["./app.cfg", "./existing/app.cfg", "./renamed.cfg"]
    assert remote_text(comm, f"{remote_dir}/renamed.cfg") == "key=1"


def test_upload_directory_with_and_without_trailing_slash(comm: Communicator, ctx: ProvisionContext, tree: Path,
                                                          remote_dir: str) -> None:
    run("file", file(source=str(tree), destination=f"{remote_dir}/with-name"), comm, ctx)
    run("file", file(source=f"{tree}/", destination=f"{remote_dir}/contents"), comm, ctx)
    assert remote_files(comm, remote_dir) == ["./contents/a.txt", "./contents/sub/b.txt",
                                              "./with-name/conf/a.txt", "./with-name/conf/sub/b.txt"]


def test_upload_content_to_a_file_and_to_a_directory(comm: Communicator, ctx: ProvisionContext,
                                                     remote_dir: str) -> None:
    run("file", file(content="hello\nworld", destination=f"{remote_dir}/motd"), comm, ctx)
    run("file", file(content="in dir", destination=f"{remote_dir}/"), comm, ctx)
    assert remote_text(comm, f"{remote_dir}/motd") == "hello\nworld"
    assert remote_text(comm, f"{remote_dir}/pkr-file-content") == "in dir"


def test_several_sources_need_a_directory_destination(comm: Communicator, ctx: ProvisionContext, tmp_path: Path,
                                                      remote_dir: str) -> None:
    for name in ("x", "y"):
        (tmp_path / name).write_text(name)
    with pytest.raises(FactoryError, match="must be a directory ending in /"):
        run("file", file(sources=["x", "y"], destination=remote_dir), comm, ctx)
    run("file", file(sources=["x", "y"], destination=f"{remote_dir}/"), comm, ctx)
    assert remote_files(comm, remote_dir) == ["./x", "./y"]


def test_missing_source_and_unwritable_destination(comm: Communicator, ctx: ProvisionContext,
                                                   tmp_path: Path) -> None:
    with pytest.raises(FactoryError, match=r"source .*nope does not exist"):
        run("file", file(source="nope", destination="/tmp/x"), comm, ctx)
    (tmp_path / "f").write_text("f")
    with pytest.raises(FactoryError, match="cannot upload to /no/such/dir/f on the guest") as info:
        run("file", file(source="f", destination="/no/such/dir/f"), comm, ctx)
    assert info.value.hint and "parent directory must exist" in info.value.hint


def test_download_file_and_directory(comm: Communicator, ctx: ProvisionContext, tmp_path: Path,
                                     remote_dir: str) -> None:
    comm.run(f"mkdir -p {remote_dir}/logs/deep && echo L1 > {remote_dir}/logs/one.log && "
             f"echo L2 > {remote_dir}/logs/deep/two.log")
    run("file", file(direction="download", source=f"{remote_dir}/logs/one.log", destination="got.log"), comm, ctx)
    run("file", file(direction="download", source=f"{remote_dir}/logs/one.log", destination="into/"), comm, ctx)
    run("file", file(direction="download", source=f"{remote_dir}/logs", destination="named"), comm, ctx)
    run("file", file(direction="download", source=f"{remote_dir}/logs/", destination="flat"), comm, ctx)
    assert (tmp_path / "got.log").read_text() == "L1\n"
    assert (tmp_path / "into" / "one.log").read_text() == "L1\n"
    assert (tmp_path / "named" / "logs" / "deep" / "two.log").read_text() == "L2\n"
    assert (tmp_path / "flat" / "deep" / "two.log").read_text() == "L2\n"
    with pytest.raises(FactoryError, match="content cannot be downloaded"):
        run("file", file(direction="download", content="x", destination="y"), comm, ctx)


def test_generated_source_made_during_the_build_is_uploaded(comm: Communicator, ctx: ProvisionContext,
                                                            tmp_path: Path, remote_dir: str) -> None:
    # `generated = true` passed the template check while the file was missing; the build then made it.
    config = file(source="made-by-shell-local.txt", destination=f"{remote_dir}/x.txt", generated=True)
    (tmp_path / "made-by-shell-local.txt").write_text("generated during the build")
    run("file", config, comm, ctx)
    assert remote_text(comm, f"{remote_dir}/x.txt") == "generated during the build"
    (tmp_path / "made-by-shell-local.txt").unlink()
    with pytest.raises(FactoryError, match="does not exist"):  # still missing at upload time: a clear error
        run("file", config, comm, ctx)
