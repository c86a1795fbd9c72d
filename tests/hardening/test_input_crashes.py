"""Inputs that used to crash factory (exit 70): deep nesting, huge numbers, NUL bytes, bad encodings, huge files.

Each is fed to the real CLI (validate, inspect, fmt, build up to validation) and must end as one located user
error. The hypothesis tests throw random bytes and random nesting at the same entry points.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hardening.harness import Result, assert_no_crash, assert_user_error, run_cli, template

DEEP = 5000
LATIN1 = template('  vm_name = "café"\n').encode("latin-1")

# (case, file content, expected pieces of the message; "{f}" is the file's path)
CASES: list[tuple[str, str | bytes, list[str]]] = [
    ("5000 nested objects", "locals {\n  a = " + "{b = " * DEEP + "1" + "}" * DEEP + "\n}\n" + template(),
     ["{f}:2:", "more than 100 levels deep"]),
    ("5000 nested parentheses", "locals {\n  a = " + "(" * DEEP + "1" + ")" * DEEP + "\n}\n" + template(),
     ["{f}:2:", "more than 100 levels deep"]),
    ("5000 nested lists", "locals {\n  a = " + "[" * DEEP + "]" * DEEP + "\n}\n" + template(),
     ["{f}:2:", "more than 100 levels deep"]),
    ("3000 nested blocks", "build {\n" + "x {\n" * 3000 + "}\n" * 3000 + "}\n", ["{f}:101:", "levels deep"]),
    ("pow(10, 400)", template("  memory = pow(10, 400)\n"), ["{f}:5:12", "pow()", "cannot be computed"]),
    ("5000-digit literal", template("  memory = " + "9" * 5000 + "\n"), ["{f}:5:12", "too large"]),
    ("NUL in a label", template().replace('"a"', '"a\0"', 1), ["{f}:1:17", "NUL byte"]),
    ("NUL in a string", template('  vm_name = "a\0b"\n'), ["{f}:5:15", "NUL byte"]),
    ("latin-1 file", LATIN1, ["{f}:5:17", "not valid UTF-8", "byte 0xe9", "iconv"]),
    ("invalid UTF-8", b'locals {\n  a = "\xff\xfe"\n}\n', ["{f}:2:8", "not valid UTF-8"]),
    ("binary junk", bytes(range(256)) * 4, ["{f}:2:118", "not valid UTF-8", "0x80"]),
]


def _file(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "t.pkr.hcl"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


@pytest.mark.parametrize("command", ["validate", "inspect", "fmt", "build"])
@pytest.mark.parametrize(("case", "content", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_template_is_a_located_user_error(tmp_path: Path, command: str, case: str, content: str | bytes,
                                              expected: list[str]) -> None:
    path = _file(tmp_path, content)
    before = path.read_bytes()
    res = run_cli([command, str(path)])
    if command == "fmt" and case in ("pow(10, 400)", "5000-digit literal"):
        assert_no_crash(res)   # fmt only checks syntax; these are evaluation errors
    else:
        assert_user_error(res, *(e.format(f=path) for e in expected))
    if res.code:
        assert path.read_bytes() == before, "a failed command changed its input"


# JSON templates: legacy Packer JSON (*.json) and HCL's JSON syntax (*.pkr.json) are read by their own paths.
JSON_CASES: list[tuple[str, bytes, list[str]]] = [
    ("5000 nested lists", b'{"builders": ' + b"[" * DEEP + b"]" * DEEP + b"}", ["{f}:1:", "more than 100 levels"]),
    ("latin-1 file", '{"builders": [{"type": "null", "name": "café"}]}'.encode("latin-1"),
     ["{f}:1:44", "not valid UTF-8", "byte 0xe9"]),
    ("NUL byte", b'{"builders": [{"type": "null"}]}\0', ["{f}:1:33", "NUL byte"]),
]


JSON_READERS = [("validate", "t.json"), ("validate", "t.pkr.json"), ("inspect", "t.json"), ("inspect", "t.pkr.json"),
                ("hcl2_upgrade", "t.json")]


@pytest.mark.parametrize(("command", "name"), JSON_READERS)
@pytest.mark.parametrize(("case", "content", "expected"), JSON_CASES, ids=[c[0] for c in JSON_CASES])
def test_bad_json_template_is_a_located_user_error(tmp_path: Path, command: str, name: str, case: str,
                                                   content: bytes, expected: list[str]) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    res = run_cli([command, str(path)])
    assert_user_error(res, *(e.format(f=path) for e in expected))
    assert path.read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


@pytest.mark.parametrize(("kind", "expected"), [("fifo", "neither a file nor a folder"),
                                                ("missing", "no such file or directory")])
def test_fmt_path_that_is_not_a_file_or_folder_says_which(tmp_path: Path, kind: str, expected: str) -> None:
    import os

    path = tmp_path / "t.pkr.hcl"
    if kind == "fifo":
        os.mkfifo(path)
    assert_user_error(run_cli(["fmt", str(path)]), f"{path}: {expected}")


def test_fmt_stdin_with_invalid_utf8_is_a_user_error() -> None:
    res = run_cli(["fmt", "-"], stdin=b'locals {\n  a = "\xe9"\n}\n')
    assert_user_error(res, "<stdin>:2:8", "not valid UTF-8")


@pytest.mark.parametrize("suffix", [".pkrvars.hcl", ".json"])
@pytest.mark.parametrize(("case", "content"), [
    ("latin-1", 'x = "café"\n'.encode("latin-1")),
    ("NUL", b'x = "a\0"\n'),
    ("deep", b"x = " + b"[" * DEEP + b"]" * DEEP + b"\n"),
])
def test_bad_var_file_is_a_located_user_error(tmp_path: Path, suffix: str, case: str, content: bytes) -> None:
    tpl = _file(tmp_path, 'variable "x" {\n  default = "y"\n}\n' + template())
    if suffix == ".json":
        content = content.replace(b"x = ", b'{"x": ').rstrip(b"\n") + b"}"
    var_file = tmp_path / f"v{suffix}"
    var_file.write_bytes(content)
    res = run_cli(["validate", "-var-file", str(var_file), str(tpl)])
    assert_user_error(res, f"{var_file}:1:")


def test_huge_template_is_refused_by_size_not_parsed(tmp_path: Path) -> None:
    path = tmp_path / "t.pkr.hcl"
    with path.open("wb") as fh:
        fh.write(template().encode())
        fh.truncate(17 * 2**20)   # sparse: cheap to make, 17 MiB to read
    res = run_cli(["validate", str(path)])
    assert_user_error(res, "17 MiB, too large for a template")


def test_malformed_json_var_file_names_line_and_column(tmp_path: Path) -> None:
    tpl = _file(tmp_path, 'variable "x" {\n  default = "y"\n}\n' + template())
    var_file = tmp_path / "v.json"
    var_file.write_text('{\n  "x": tru\n}\n')
    assert_user_error(run_cli(["validate", "-var-file", str(var_file), str(tpl)]), f"{var_file}:2:8", "not valid JSON")


@pytest.mark.parametrize(("case", "value"), [
    ("deep list", "[" * DEEP + "]" * DEEP),
    ("huge number", "9" * 5000),
    ("NUL", "a\0b"),
])
def test_bad_var_values_are_user_errors(tmp_path: Path, case: str, value: str) -> None:
    tpl = _file(tmp_path, 'variable "x" {\n  type = list(string)\n  default = []\n}\n' + template())
    assert_no_crash(run_cli(["validate", "-var", f"x={value}", str(tpl)]))


# -- fuzzing ---------------------------------------------------------------------------------------------------
# Bounded so the fuzzing stays in the default suite (a few seconds per test on a loaded machine).
def _fuzz(n: int) -> settings:
    return settings(max_examples=n, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])



_PIECES = st.sampled_from(['{', '}', '(', ')', '[', ']', '"', '${', '=', '\n', 'a', '1', 'x.y', '<<EOF\n', 'EOF\n',
                           '#', '/*', '*/', ',', '?', ':', '...', 'for', 'in', '=>', '\0', '\\', 'é', '\t', ' '])


@_fuzz(15)
@given(st.binary(max_size=400))
def test_fuzz_random_bytes_never_crash(tmp_path: Path, data: bytes) -> None:
    path = _file(tmp_path, data)
    for command in ("validate", "fmt"):
        assert_no_crash(run_cli([command, "-check", str(path)] if command == "fmt" else [command, str(path)]))


@_fuzz(12)
@given(st.lists(_PIECES, max_size=120).map("".join))
def test_fuzz_hcl_shaped_text_never_crashes(tmp_path: Path, body: str) -> None:
    path = _file(tmp_path, "locals {\n  v = " + body + "\n}\n" + template())
    for command in ("validate", "inspect"):
        assert_no_crash(run_cli([command, str(path)]))
    assert_no_crash(run_cli(["fmt", "-check", str(path)]))


@_fuzz(8)
@given(st.integers(min_value=90, max_value=400), st.sampled_from(["(", "[", "{a = "]))
def test_fuzz_nesting_depth_never_crashes(tmp_path: Path, depth: int, opener: str) -> None:
    res, levels = _validate_nested(tmp_path, opener, depth)
    assert (res.code == 0) == (levels <= 100), str(res)


def _validate_nested(tmp_path: Path, opener: str, depth: int) -> tuple[Result, int]:
    """`factory validate` on a local nested depth times in opener; also how many levels that is, counting the
    locals block and, for a list, the innermost empty list."""
    closer = {"(": ")", "[": "]", "{a = ": "}"}[opener]
    inner = "[]" if opener == "[" else "1"
    path = _file(tmp_path, "locals {\n  v = " + opener * depth + inner + closer * depth + "\n}\n" + template())
    res = run_cli(["validate", str(path)])
    assert_no_crash(res)
    return res, 1 + depth + (inner == "[]")


@pytest.mark.parametrize(("opener", "deepest_accepted"), [("(", 99), ("[", 98), ("{a = ", 99)])
def test_nesting_limit_is_exactly_100_levels_counting_the_block(tmp_path: Path, opener: str,
                                                                 deepest_accepted: int) -> None:
    """The boundary the fuzz test above samples only by chance (hypothesis found depth 99 of '[' + '[]' once)."""
    for depth, ok in ((deepest_accepted, True), (deepest_accepted + 1, False)):
        res, _ = _validate_nested(tmp_path, opener, depth)
        assert (res.code == 0) == ok, (depth, str(res))
        if not ok:
            assert "more than 100 levels deep" in res.err
