"""`iso = "<catalog name>"`: the unattended config factory renders, and the direct-kernel arguments."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fixtures.isos import KERNEL

from factory.build import EventBus
from factory.comm.keys import KeyPair
from factory.errors import FactoryError, FactoryErrors
from factory.media.catalog import InstallerFamily
from factory.media.preseed import hash_password
from factory.schema.qemu import QemuSource
from factory.steps.context import BuildContext
from factory.steps.unattended import Unattended, _vars, check_vars, direct_kernel_args, finish_direct_boot


def test_direct_kernel_args_point_at_the_build_http_server() -> None:
    base = "http://10.0.2.2:8123/"
    assert direct_kernel_args(InstallerFamily.SUBIQUITY, base, "Ubuntu-Server 24.04.3 LTS amd64") == (
        "autoinstall ds=nocloud-net;s=http://10.0.2.2:8123/nocloud/")
    assert "preseed/url=http://10.0.2.2:8123/preseed.cfg" in direct_kernel_args(InstallerFamily.DEBIAN, base, "D")
    assert direct_kernel_args(InstallerFamily.ANACONDA, base, "Rocky 9") == (
        "inst.stage2=hd:LABEL=Rocky\\x209 inst.ks=http://10.0.2.2:8123/ks.cfg")


def test_unattended_vars_get_the_ssh_user_key_and_poweroff() -> None:
    key = KeyPair.generate()
    ctx = BuildContext(build_name="b", bus=EventBus(), keypair=key,
                       config=QemuSource(preseed_vars={"hostname": "web1"}, ssh_username="ops",
                                         ssh_password="s3cret-pass"))
    v = _vars(ctx)
    assert v.hostname == "web1" and v.username == "ops" and v.poweroff
    assert v.ssh_authorized_keys == (key.public_openssh,)
    assert v.password_hash.startswith("$6$") and "s3cret-pass" not in repr(v)


def _ctx(preseed_vars: dict[str, str], ssh_password: str | None = None, key: KeyPair | None = None) -> Any:
    return BuildContext(build_name="b", bus=EventBus(), keypair=key, source_type="qemu", source_name="web",
                        config=QemuSource(preseed_vars=preseed_vars, ssh_username="ops", iso="x",
                                          ssh_password=ssh_password))


def test_without_a_password_the_account_gets_an_unguessable_one() -> None:
    key = KeyPair.generate()
    first, second = _vars(_ctx({}, key=key)), _vars(_ctx({}, key=key))
    assert first.password_hash.startswith("$6$") and first.password_hash != second.password_hash
    given = hash_password("chosen-pw")
    assert _vars(_ctx({"password_hash": given}, key=key)).password_hash == given


def test_bad_preseed_vars_name_the_option_and_are_found_before_the_build() -> None:
    with pytest.raises(FactoryError) as unknown:
        check_vars(_ctx({"hosname": "x"}))
    assert unknown.value.message == "source qemu.web: preseed_vars.hosname: unknown variable"
    assert unknown.value.hint == "did you mean 'hostname'?"
    with pytest.raises(FactoryErrors) as several:
        check_vars(_ctx({"hostname": "no_underscores", "locale": "english"}))
    assert [e.message.split(" is not")[0] for e in several.value.errors] == [
        "source qemu.web: preseed_vars.hostname: 'no_underscores'", "source qemu.web: preseed_vars.locale: 'english'"]


def _release(iso: Any) -> Any:
    from factory.media.catalog import Release

    return Release(name="t", title="T 1", family=InstallerFamily.SUBIQUITY, iso_urls=(str(iso.path),),
                   sha256=hashlib.sha256(iso.path.read_bytes()).hexdigest(), iso_filename=iso.path.name,
                   checksum_url="", signature_url="", signing_key_fingerprint="", volume_id=iso.volume_id,
                   kernel=iso.kernel.lstrip("/"), initrd=iso.initrd.lstrip("/"), boot_configs=iso.boot_configs,
                   source=Path("t.toml"))


def _run_ctx(iso: Any, workdir: Path, method: str, preseed_vars: dict[str, str], key: KeyPair | None) -> Any:
    workdir.mkdir()
    ctx = _ctx(preseed_vars, key=key)
    ctx.config = dataclasses.replace(ctx.config, install_method=method)
    ctx.release, ctx.media, ctx.workdir = _release(iso), iso.path, workdir
    ctx.unattended_files, ctx.direct_boot, ctx.http = {}, None, None
    return ctx


def test_media_made_for_one_build_are_not_cached(ubuntu_iso: Any, tmp_path: Path) -> None:
    from factory.media.iso import extract
    from factory.store import Store

    key = KeyPair.generate()
    ctx = _run_ctx(ubuntu_iso, tmp_path / "a", "media", {"hostname": "web1"}, key)
    Unattended().run(ctx)
    assert ctx.media == tmp_path / "a/unattended.iso"
    (user_data,) = extract(ctx.media, ["nocloud/user-data"], tmp_path / "x")
    assert key.public_openssh in user_data.read_text() and "hostname: \"web1\"" in user_data.read_text()
    assert not Store().entries("remaster")  # its key makes it useless to any other build
    fixed = _run_ctx(ubuntu_iso, tmp_path / "b", "media", {"password_hash": hash_password("pw-1")}, None)
    Unattended().run(fixed)
    assert len(Store().entries("remaster")) == 1  # same inputs, same media: cached


def test_direct_kernel_extracts_kernel_and_initrd_and_serves_the_config(ubuntu_iso: Any, tmp_path: Path) -> None:
    key = KeyPair.generate()
    ctx = _run_ctx(ubuntu_iso, tmp_path / "w", "direct-kernel", {}, key)
    Unattended().run(ctx)
    assert ctx.media == ubuntu_iso.path  # the vendor's ISO, untouched, stays attached for the installer
    assert ctx.direct_boot.kernel.read_bytes() == Path(KERNEL).read_bytes()
    assert sorted(ctx.unattended_files) == ["nocloud/meta-data", "nocloud/user-data"]
    assert key.public_openssh.encode() in ctx.unattended_files["nocloud/user-data"]
    ctx.http = SimpleNamespace(guest_host="10.0.2.2", port=8123)
    finish_direct_boot(ctx)
    assert ctx.direct_boot.cmdline == "autoinstall ds=nocloud-net;s=http://10.0.2.2:8123/nocloud/ console=ttyS0"
