"""`iso = "<catalog name>"`: the unattended config factory renders, and the direct-kernel arguments."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from factory.comm.keys import KeyPair
from factory.errors import FactoryError, FactoryErrors
from factory.media.catalog import InstallerFamily
from factory.media.preseed import hash_password
from factory.steps.unattended import _vars, check_vars, direct_kernel_args


def test_direct_kernel_args_point_at_the_build_http_server() -> None:
    base = "http://10.0.2.2:8123/"
    assert direct_kernel_args(InstallerFamily.SUBIQUITY, base) == (
        "autoinstall ds=nocloud-net;s=http://10.0.2.2:8123/nocloud/")
    assert "preseed/url=http://10.0.2.2:8123/preseed.cfg" in direct_kernel_args(InstallerFamily.DEBIAN, base)
    assert direct_kernel_args(InstallerFamily.ANACONDA, base) == "inst.ks=http://10.0.2.2:8123/ks.cfg"


def test_unattended_vars_get_the_ssh_user_key_and_poweroff() -> None:
    key = KeyPair.generate()
    ctx = SimpleNamespace(config=SimpleNamespace(preseed_vars={"hostname": "web1"}, ssh_username="ops"),
                          s=SimpleNamespace(ssh_username="ops", ssh_password="s3cret-pass"), keypair=key)
    v = _vars(ctx)  # type: ignore[arg-type]
    assert v.hostname == "web1" and v.username == "ops" and v.poweroff
    assert v.ssh_authorized_keys == (key.public_openssh,)
    assert v.password_hash.startswith("$6$") and "s3cret-pass" not in repr(v)


def _ctx(preseed_vars: dict[str, str], ssh_password: str | None = None, key: KeyPair | None = None) -> Any:
    return SimpleNamespace(config=SimpleNamespace(preseed_vars=preseed_vars, ssh_username="ops", iso="x"),
                           s=SimpleNamespace(ssh_username="ops", ssh_password=ssh_password), keypair=key,
                           source_type="qemu", source_name="web")


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
