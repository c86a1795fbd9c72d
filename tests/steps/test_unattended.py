"""`iso = "<catalog name>"`: the unattended config factory renders, and the direct-kernel arguments."""

from __future__ import annotations

from types import SimpleNamespace

from factory.comm.keys import KeyPair
from factory.media.catalog import InstallerFamily
from factory.steps.unattended import _vars, direct_kernel_args


def test_direct_kernel_args_point_at_the_build_http_server() -> None:
    assert direct_kernel_args(InstallerFamily.SUBIQUITY, 8123) == (
        "autoinstall ds=nocloud-net;s=http://10.0.2.2:8123/nocloud/")
    assert "preseed/url=http://10.0.2.2:8123/preseed.cfg" in direct_kernel_args(InstallerFamily.DEBIAN, 8123)
    assert direct_kernel_args(InstallerFamily.ANACONDA, 8123) == "inst.ks=http://10.0.2.2:8123/ks.cfg"


def test_unattended_vars_get_the_ssh_user_key_and_poweroff() -> None:
    key = KeyPair.generate()
    ctx = SimpleNamespace(config=SimpleNamespace(preseed_vars={"hostname": "web1"}, ssh_username="ops"),
                          s=SimpleNamespace(ssh_username="ops", ssh_password="s3cret-pass"), keypair=key)
    v = _vars(ctx)  # type: ignore[arg-type]
    assert v.hostname == "web1" and v.username == "ops" and v.poweroff
    assert v.ssh_authorized_keys == (key.public_openssh,)
    assert v.password_hash.startswith("$6$") and "s3cret-pass" not in repr(v)
