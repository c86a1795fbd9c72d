"""Fuzz every declared option of every source, provisioner and post-processor with values of every HCL shape:
`validate` either accepts or refuses with one located message naming the option; it never crashes (exit 70)."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory.options import Kind, options_of
from factory.schema import registered
from hardening.harness import assert_no_crash, run_cli, template

_SCALARS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 65536, 2**31, 2**63, 10**30]),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.booleans(),
    st.text(max_size=30).filter(lambda s: "\0" not in s),
    st.sampled_from(["", "none", "-1s", "5m", "sha256:xyz", "../..", "/", "a/b", "<entr>", "40G", "0", "${x}",
                     "%{ if true }x%{ endif }", "{{ .Nope }}", "~", "é"]),
)
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                         st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True),
                                                                         inner, max_size=3)), max_leaves=6)


def _hcl(value: object) -> str:
    """An HCL literal for value: JSON is HCL's literal syntax except for object keys, `${` and `%{`."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_hcl(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value).replace("${", "$${").replace("%{", "%%{")
    return json.dumps(value)


def _names(kind: Kind, type_: str) -> list[str]:
    return [o.name for o in options_of(registered(kind)[type_])]


_SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(path: Path, option: str) -> None:
    res = run_cli(["validate", str(path)])
    assert_no_crash(res)
    if res.code == 1:
        assert f"{path}:" in res.err, str(res)


@_SETTINGS
@given(st.sampled_from(_names(Kind.SOURCE, "qemu")), _VALUES)
def test_fuzz_qemu_options_never_crash_validate(tmp_path: Path, option: str, value: object) -> None:
    path = tmp_path / "t.pkr.hcl"
    base = template().replace('  iso_checksum = "none"\n', "") if option == "iso_checksum" else template()
    if option in ("iso_url", "ssh_username"):
        base = base.replace(f'  {option}', f"  # {option}", 1)
    path.write_text(base.replace("}\nbuild", f"  {option} = {_hcl(value)}\n}}\nbuild", 1))
    _check(path, option)


@_SETTINGS
@given(st.sampled_from(sorted(registered(Kind.PROVISIONER))), st.data())
def test_fuzz_provisioner_options_never_crash_validate(tmp_path: Path, type_: str, data: st.DataObject) -> None:
    names = _names(Kind.PROVISIONER, type_)
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)) if names else []
    body = "".join(f"    {n} = {_hcl(data.draw(_VALUES))}\n" for n in chosen)
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(build_lines=f'  provisioner "{type_}" {{\n{body}  }}\n'))
    _check(path, type_)


@_SETTINGS
@given(st.sampled_from(sorted(registered(Kind.POST_PROCESSOR))), st.data())
def test_fuzz_post_processor_options_never_crash_validate(tmp_path: Path, type_: str, data: st.DataObject) -> None:
    names = _names(Kind.POST_PROCESSOR, type_)
    chosen = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True)) if names else []
    body = "".join(f"    {n} = {_hcl(data.draw(_VALUES))}\n" for n in chosen)
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(build_lines=f'  post-processor "{type_}" {{\n{body}  }}\n'))
    _check(path, type_)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(min_size=1, max_size=20).filter(lambda s: "\0" not in s), st.text(max_size=20).filter(
    lambda s: "\0" not in s))
def test_fuzz_var_names_are_named_in_the_message(tmp_path: Path, name: str, value: str) -> None:
    """An undeclared -var is refused naming it (or, if malformed, the whole -var); never a crash."""
    path = tmp_path / "t.pkr.hcl"
    path.write_text('variable "x" {\n  default = "a"\n}\n' + template())
    res = run_cli(["validate", "-var", f"{name}={value}", str(path)])
    assert_no_crash(res)
    if res.code == 1 and name.strip() != "x" and "=" not in name:
        assert f'-var "{name}"' in res.err or "-var" in res.err, str(res)
