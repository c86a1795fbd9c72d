"""The option declarations themselves: every component is documented, typed, and its defaults are valid."""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from enum import StrEnum
from typing import Any

import pytest

from factory.errors import FactoryError
from factory.options import Component, Kind, OptionValue, Support, options_of
from factory.schema import lookup, registered
from factory.schema.types import Checked, OptionProblem, check, parse_duration, parse_size_mib

ALL = [cls for kind in Kind for cls in registered(kind).values()]
IDS = [f"{cls.kind}.{cls.type_name}" for cls in ALL]

# The value types the template layer converts HCL values into (BRIEF: option value types).
SCALARS = (str, int, float, bool)
META_ARGUMENTS = {"name", "only", "except", "except_", "override", "pause_before", "max_retries", "timeout",
                  "keep_input_artifact", "type"}


# Nested blocks (libvirt's `volume { }`, `communicator { }`) arrive as maps; the declaring class parses them with
# a VALIDATORS entry into typed block dataclasses.
BLOCK_TYPES = (list[dict[str, Any]], str | dict[str, Any])


def _allowed_type(tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp in SCALARS or tp in BLOCK_TYPES or (isinstance(tp, type) and issubclass(tp, OptionValue | StrEnum)):
        return True
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        return len(rest) == 1 and type(None) in args and _allowed_type(rest[0])
    if origin is list:
        return args[0] in (str, int) or _allowed_type(args[0]) or (typing.get_origin(args[0]) is list
                                                                   and typing.get_args(args[0]) == (str,))
    if origin is dict:
        return args[0] is str and (args[1] is str or args[1] == list[str])
    return False


def _conforms(value: Any, tp: Any) -> bool:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, a) for a in args)
    if tp is type(None):
        return value is None
    if isinstance(tp, type) and issubclass(tp, OptionValue):
        return isinstance(value, str | int) and not isinstance(value, bool)  # as written; parsed by cls() below
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return value in {m.value for m in tp}
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp in SCALARS:
        return type(value) is tp
    if tp is Any:
        return True
    if origin is list:
        return isinstance(value, list) and all(_conforms(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_conforms(k, args[0]) and _conforms(v, args[1])
                                               for k, v in value.items())
    return False


def test_the_issue_s_components_are_all_declared() -> None:
    expected = {
        Kind.SOURCE: {"qemu", "virtualbox-iso"},
        Kind.PROVISIONER: {"shell", "file", "shell-local", "breakpoint", "ansible"},
        Kind.POST_PROCESSOR: {"manifest", "checksum", "compress", "shell-local", "artifice", "vagrant"},
    }
    for kind, names in expected.items():
        assert names <= set(registered(kind)), f"missing {kind}: {names - set(registered(kind))}"
    assert lookup(Kind.SOURCE, "qemu").__name__ == "QemuSource"  # type: ignore[union-attr]
    assert lookup(Kind.SOURCE, "hyperv-iso") is None


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_every_option_has_help_a_supported_type_and_a_default_of_that_type(cls: type[Component]) -> None:
    assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen  # type: ignore[attr-defined]
    assert cls.summary, f"{cls.type_name} has no summary for the reference page"
    options = options_of(cls)
    assert options, f"{cls.type_name} declares no options"
    for o in options:
        assert len(o.help) >= 15, f"{cls.type_name}.{o.name}: help too short: {o.help!r}"
        assert o.help.rstrip().endswith((".", ")", "`")), f"{cls.type_name}.{o.name}: help is not a sentence"
        written = o.written if o.written is not None else o.type
        assert _allowed_type(written), f"{cls.type_name}.{o.name}: unsupported type {o.type_name}"
        if o.type in BLOCK_TYPES:
            assert o.name in getattr(cls, "VALIDATORS", {}), f"{cls.type_name}.{o.name}: a block needs a parser"
        if o.required:
            assert o.default is None, f"{o.name}: a required option has no default"
        else:
            assert _conforms(o.default, written), f"{cls.type_name}.{o.name}: default {o.default!r} is not {written}"
        assert o.name not in META_ARGUMENTS, f"{o.name} is a meta-argument handled by the template layer"


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_checked_option_names_exist_and_defaults_pass_the_checks(cls: type[Component]) -> None:
    names = {o.name for o in options_of(cls)}
    for attr in ("DURATIONS", "SIZES"):
        assert set(getattr(cls, attr, ())) <= names, f"{attr} names an undeclared option"
    assert set(getattr(cls, "CHOICES", {})) <= names
    for group in getattr(cls, "EXCLUSIVE", ()):
        assert set(group) <= names
    instance = cls()
    # Cross-option rules may need a value with no default (the null builder needs ssh_host): those are
    # exercised by their own tests; every per-option check must pass on the defaults.
    whole = instance.problems() if isinstance(instance, Checked) else []
    assert [p for p in check(instance) if p not in whole] == []
    for name, allowed in getattr(cls, "CHOICES", {}).items():
        default = getattr(instance, name)
        assert default is None or default in allowed, f"{name}: default {default!r} not among its choices"


@pytest.mark.parametrize("cls", ALL, ids=IDS)
def test_passwords_are_sensitive(cls: type[Component]) -> None:
    for o in options_of(cls):
        if o.name.endswith("password") and o.type is not bool:
            assert o.sensitive, f"{cls.type_name}.{o.name} must be sensitive"


def test_mutable_defaults_are_not_shared_between_instances() -> None:
    from factory.schema.qemu import QemuSource

    a, b = QemuSource(), QemuSource()
    assert a.boot_command == [] and a.boot_command is not b.boot_command


def test_qemu_declares_packers_defaults() -> None:
    from factory.schema.qemu import QemuSource

    q = QemuSource()
    assert (q.disk_size, q.memory, q.cpus, q.format, q.disk_interface, q.net_device) == (
        40960, 512, 1, "qcow2", "virtio", "virtio-net")
    assert (q.boot_wait, q.ssh_timeout, q.shutdown_timeout) == (10.0, 300.0, 300.0)
    assert (q.host_port_min, q.host_port_max, q.http_port_min, q.http_port_max) == (2222, 4444, 8000, 9000)
    assert q.accelerator == "auto" and q.communicator == "ssh"
    factory_only = {o.name for o in options_of(QemuSource) if o.factory_only}
    assert factory_only == {"iso", "preseed_vars", "install_method", "serial_log", "screenshot_on_failure"}


def test_qemu_marks_what_the_engine_does_not_act_on() -> None:
    from factory.schema.qemu import QemuSource

    support = {o.name: o.support for o in options_of(QemuSource)}
    for name in ("net_bridge", "run_once", "http_interface"):
        assert support[name] is Support.IGNORED, name
    for name in ("iso_url", "disk_image", "cd_content", "boot_command", "ssh_username", "efi_boot", "accelerator",
                 "vnc_use_password", "vtpm", "floppy_files", "qmp_enable", "use_pflash"):
        assert support[name] is Support.ACTED, name


def test_checksum_defaults_to_sha256_unlike_packer() -> None:
    from factory.schema.post_processors import ChecksumPostProcessor

    assert ChecksumPostProcessor().checksum_types == ["sha256"]


@pytest.mark.parametrize(("text", "seconds"), [
    ("5m", 300.0), ("1h30m", 5400.0), ("10s", 10.0), ("100ms", 0.1), ("1.5h", 5400.0), ("2h45m30s", 9930.0),
    ("0", 0.0), ("-1s", -1.0), ("+3s", 3.0), ("300us", 3e-4), ("300µs", 3e-4), ("1ns", 1e-9), (".5s", 0.5),
    ("1m0.5s", 60.5), (" 5m ", 300.0),
])
def test_parse_duration_reads_go_durations(text: str, seconds: float) -> None:
    assert math.isclose(parse_duration(text), seconds, rel_tol=1e-12, abs_tol=1e-15)


@pytest.mark.parametrize(("text", "hint_part"), [
    ("10", "needs a unit"), ("", "Go duration"), ("5 minutes", "Go duration"), ("1d", "Go duration"),
    ("m5", "Go duration"), ("--1s", "Go duration"), ("5m3", "Go duration"), ("1.2.3s", "Go duration"),
])
def test_parse_duration_rejects_malformed_text_with_a_hint(text: str, hint_part: str) -> None:
    with pytest.raises(FactoryError) as err:
        parse_duration(text, what="boot_wait")
    assert "boot_wait" in err.value.message and repr(text) in err.value.message
    assert hint_part in (err.value.hint or "")


@pytest.mark.parametrize("value", [10, 1.5, None, True])
def test_parse_duration_rejects_non_strings(value: Any) -> None:
    with pytest.raises(FactoryError):
        parse_duration(value)


@pytest.mark.parametrize(("text", "mib"), [
    ("40960M", 40960), ("40G", 40960), ("2048", 2048), (2048, 2048), ("1T", 1024 * 1024), ("1.5G", 1536),
    ("512K", 1), ("1048576k", 1024), ("20GiB", 20480), ("20GB", 20480), ("10 G", 10240), ("2097152b", 2),
    ("1b", 1), ("1E", 1024**4),
])
def test_parse_size_mib_reads_qemu_img_sizes(text: str | int, mib: int) -> None:
    assert parse_size_mib(text) == mib


@pytest.mark.parametrize("text", ["", "G", "40X", "-1G", "0", "0M", "forty", "1.G", "10 GiBs", True, 1.5])
def test_parse_size_mib_rejects_malformed_sizes(text: Any) -> None:
    with pytest.raises(FactoryError) as err:
        parse_size_mib(text, what="disk_size")
    assert "disk_size" in err.value.message and err.value.hint


def test_check_reports_each_bad_value_with_a_hint() -> None:
    from factory.schema.qemu import QemuSource

    config = QemuSource(iso_url="a.iso", iso_urls=["b.iso"], iso_checksum="none", disk_cache="writebak",
                        ssh_timeout="20m")
    problems = {p.option: p for p in check(config)}
    assert set(problems) == {"iso_urls", "disk_cache"}
    assert problems["disk_cache"].hint == "did you mean 'writeback'?"
    assert problems["iso_urls"] == OptionProblem("iso_urls", "iso_url and iso_urls cannot both be set",
                                                 "keep only one of iso_url, iso_urls")


@pytest.mark.parametrize(("option", "value", "message", "hint"), [
    ("boot_wait", "10", "invalid boot_wait '10'", '"10s"'),
    ("format", "qcow", "invalid format 'qcow'; allowed: qcow2, raw", "did you mean 'qcow2'?"),
    ("disk_size", "big", "invalid disk_size 'big'", "512M"),
    ("disk_additional_size", ["1G", "x"], "invalid disk_additional_size 'x'", "512M"),
])
def test_a_value_that_does_not_convert_is_refused_naming_the_option(option: str, value: Any, message: str,
                                                                    hint: str) -> None:
    from factory.schema.qemu import QemuSource

    with pytest.raises(FactoryError) as err:
        QemuSource(iso_url="a.iso", **{option: value})
    assert message in err.value.message and hint in (err.value.hint or "")


def test_check_on_provisioners_enforces_one_source_of_commands() -> None:
    from factory.schema.provisioners import FileProvisioner, ShellProvisioner

    assert check(ShellProvisioner(inline=["true"])) == []
    both = check(ShellProvisioner(inline=["true"], script="x.sh"))
    assert [(p.option, p.message) for p in both] == [
        ("script", "inline and script cannot both be set"),
        ("script", "shell provisioner: script x.sh does not exist")]
    assert [p.option for p in check(ShellProvisioner())] == ["inline"]
    assert [p.option for p in check(FileProvisioner(direction="sideways", content="x", destination="/x"))] == [
        "direction"]
    assert [p.option for p in check(FileProvisioner(destination="/x"))] == ["source"]  # nothing to copy


def test_a_script_is_any_path_that_exists_and_is_not_a_folder(tmp_path: Any) -> None:
    """Packer stats the script: packer-maas's default customize_script is /dev/null; a folder is refused."""
    from factory.schema.provisioners import ShellProvisioner

    assert check(ShellProvisioner(scripts=["/dev/null"])) == []
    assert [p.message for p in check(ShellProvisioner(scripts=[str(tmp_path)]))] == [
        f"shell provisioner: script {tmp_path} does not exist"]
