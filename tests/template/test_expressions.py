"""Every HCL expression form, with the semantics HCL's spec documents (types, templates, for, splat ...)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fixtures.hcl_eval import ev
from hypothesis import given, settings
from hypothesis import strategies as st

from factory.template.expr import EvalError
from factory.template.types import Unknown

CASES: list[tuple[str, Any]] = [
    # literals
    ("42", 42), ("-7", -7), ("1.5", 1.5), ("1e3", 1000), ("true", True), ("false", False), ("null", None),
    ('"plain"', "plain"), ('"tab\\tquote\\"back\\\\slash"', 'tab\tquote"back\\slash'), ('"\\u00e9"', "é"),
    ('"\\U0001F600"', "😀"),
    ("[1, \"a\", true]", [1, "a", True]), ("[]", []), ("{}", {}),
    ('{ a = 1, "b-c" = 2, d: 3 }', {"a": 1, "b-c": 2, "d": 3}),
    ("{\n  a = 1\n  b = [\n    2,\n  ]\n}", {"a": 1, "b": [2]}),
    ('{ (var.k) = 1 }', {"key": 1}), ('{ "${var.k}-x" = 1 }', {"key-x": 1}),
    # arithmetic, precedence, division
    ("1 + 2 * 3", 7), ("(1 + 2) * 3", 9), ("10 / 4", 2.5), ("10 / 5", 2), ("7 % 3", 1), ("-7 % 3", -1),
    ("2 - 3 - 4", -5), ('"2" + 1', 3), ("-var.n", -3), ("1 / 0 > 100", True),
    # comparison and logic
    ("1 < 2", True), ("2 <= 2", True), ("3 > 4", False), ("3 >= 4", False),
    ('1 == "1"', False), ("1 == 1.0", True), ('"a" != "b"', True), ("[1, 2] == [1, 2]", True),
    ("{ a = 1 } == { a = 1 }", True), ("null == null", True), ("true && false", False), ("true || false", True),
    ("!true", False), ('!var.flag && "true"', False), ("1 < 2 && 2 < 3 || false", True),
    # conditionals
    ('true ? "a" : "b"', "a"), ('var.n > 2 ? "big" : "small"', "big"),
    ('var.os == "debian" ? "d" : var.os == "ubuntu" ? "u" : "other"', "u"),
    # references, index, attribute
    ("var.list[1]", "b"), ("var.list.0", "a"), ('var.map["x"]', 1), ("var.map.y", 2), ("var.obj.inner.deep", "v"),
    ('var.obj["inner"]["deep"]', "v"), ("var.objs[0].name", "one"), ('var.list[var.n - 2]', "b"),
    # splat
    ("var.objs[*].name", ["one", "two"]), ("var.objs.*.name", ["one", "two"]), ("var.obj[*].inner.deep", ["v"]),
    ("var.nothing[*]", []), ("length(var.objs[*].id)", 2), ("var.nested[*].items[0]", [1, 3]),
    # for expressions
    ('[for s in var.list : upper(s)]', ["A", "B", "C"]),
    ('[for i, s in var.list : "${i}=${s}"]', ["0=a", "1=b", "2=c"]),
    ('[for s in var.list : s if s != "b"]', ["a", "c"]),
    ("{for k, v in var.map : v => k}", {"1": "x", "2": "y"}),
    ('{for s in var.list : s => upper(s)}', {"a": "A", "b": "B", "c": "C"}),
    ("{for o in var.objs : o.kind => o.name...}", {"k": ["one", "two"]}),
    ("[for k, v in { b = 2, a = 1 } : k]", ["a", "b"]),
    ("[for x in [[1, 2], [3]] : [for y in x : y * 10]]", [[10, 20], [30]]),
    ("{for k, v in var.map : k => v if v > 1}", {"y": 2}),
    # string templates
    ('"n=${var.n}"', "n=3"), ('"${var.n}"', 3), ('"${var.list}"', ["a", "b", "c"]), ('"${1 + 1}x"', "2x"),
    ('"${true}"', True), ('"a ${true} b"', "a true b"),
    ('"%{ if var.flag }yes%{ else }no%{ endif }"', "yes"), ('"%{ if !var.flag }yes%{ endif }"', ""),
    ('"%{ for s in var.list }${s},%{ endfor }"', "a,b,c,"),
    ('"%{ for i, s in var.list }${i}${s} %{ endfor }"', "0a 1b 2c "),
    ('"a  %{~ if true ~}  b  %{~ endif ~}  c"', "abc"),
    ('"$${literal} %%{literal}"', "${literal} %{literal}"),
    ('"{{ .HTTPIP }}:{{ .HTTPPort }}/{{ .Name }} {{ .SSHPublicKey | urlquery }}"',
     "{{ .HTTPIP }}:{{ .HTTPPort }}/{{ .Name }} {{ .SSHPublicKey | urlquery }}"),
    ('"chmod +x {{ .Path }}; {{ .Vars }} sudo -E {{ .Path }}"',
     "chmod +x {{ .Path }}; {{ .Vars }} sudo -E {{ .Path }}"),
    ('"${join(",", [for s in var.list : "-${s}"])}"', "-a,-b,-c"),
    ('"%{ if var.os == "ubuntu" }u%{ endif }"', "u"),
    ('"${var.n > 2 ? "x" : "y"}!"', "x!"),
    # heredocs
    ("<<EOF\nhello\n  ${var.os}\nEOF\n", "hello\n  ubuntu\n"),
    ("<<-EOF\n    a\n      b ${var.n}\n    EOF\n", "a\n  b 3\n"),
    ("<<EOT\n%{ for s in var.list ~}\n${s}\n%{ endfor ~}\nEOT\n", "a\nb\nc\n"),
    ('<<EOF\n"quoted" \\n $${x} {{ .Vars }}\nEOF\n', '"quoted" \\n ${x} {{ .Vars }}\n'),
    ('<<EOF\n${jsonencode({a = "}"})}\nEOF\n', '{"a":"}"}\n'),
    ("<<EOF\nEOF\n", ""),
    # functions with expansion
    ("max(var.nums...)", 9), ('concat(var.list, ["d"])', ["a", "b", "c", "d"]),
    # a bare namespace is the object of its entries
    ("keys(var)[0]", "flag"), ("length(var)", 11), ("var.map", {"x": 1, "y": 2}),
]

VARS: dict[str, Any] = {
    "k": "key", "n": 3, "flag": True, "os": "ubuntu", "list": ["a", "b", "c"], "map": {"x": 1, "y": 2},
    "obj": {"inner": {"deep": "v"}}, "nothing": None, "nums": [1, 9, 4],
    "objs": [{"name": "one", "kind": "k", "id": 1}, {"name": "two", "kind": "k", "id": 2}],
    "nested": [{"items": [1, 2]}, {"items": [3]}],
}


@pytest.mark.parametrize(("expr", "expected"), CASES, ids=[c[0] for c in CASES])
def test_expression(expr: str, expected: Any) -> None:
    assert ev(expr, **VARS) == expected


ERRORS = [
    ("var.list[5]", "index 5 out of range for a list of 3 element(s)"),
    ('var.map["z"]', 'the map has no element for key "z"'),
    ("var.obj.iner", 'did you mean "inner"'),
    ("var.nmae", 'reference to undeclared variable "var.nmae"'),
    ("lcoal.x", 'unknown variable "lcoal"'),
    ('"a" + 1', 'invalid operand: a number is required; "a" is not a number'),
    ('1 && true', "a bool is required"),
    ('"${var.list} items"', "cannot include a tuple in a string template"),
    ('"${var.nothing}!"', "the expression is null"),
    ("null ? 1 : 2", "the condition is null"),
    ('[for s in 5 : s]', "cannot iterate over a number"),
    ('{for s in ["a", "a"] : s => 1}', 'duplicate object key "a"'),
    ('"%{ if true }x"', "%{ if } without a matching %{ endif }"),
    ('"x%{ endfor }"', "unexpected %{ endfor }"),
    ("var.n.x", 'cannot access attribute "x" of a number'),
    ("max([1]...)+[1]", "a number is required"),
]


@pytest.mark.parametrize(("expr", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_expression_errors(expr: str, message: str) -> None:
    with pytest.raises(EvalError) as exc:
        ev(expr, **VARS)
    assert message in exc.value.render()


def test_error_points_at_the_failing_node() -> None:
    with pytest.raises(EvalError) as exc:
        ev('concat(["a"],\n  var.list[7])', **VARS)
    assert (exc.value.where.line, exc.value.where.column) == (2, 11)  # type: ignore[union-attr]
    assert "^" in exc.value.render()


def test_unknown_values_propagate_and_try_falls_back() -> None:
    unknown = Unknown("data.amazon-ami.x from a plugin")
    assert ev("upper(var.u)", u=unknown) == unknown
    assert ev('"${var.u}-x"', u=unknown) == unknown
    assert ev("[for x in var.u : x]", u=unknown) == unknown
    assert ev("var.u.id", u=unknown) == unknown
    assert ev('try(var.u.id, "fallback")', u=unknown) == "fallback"
    assert ev("can(var.u.id)", u=unknown) is False
    assert ev('var.u == "x" ? 1 : 2', u=unknown) == unknown


@settings(deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers(-10**9, 10**9) | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                 max_size=4), max_leaves=12))
def test_jsonencode_jsondecode_roundtrip(value: Any) -> None:
    encoded = ev("jsonencode(var.v)", v=value)
    assert json.loads(encoded) == value
    assert ev("jsondecode(jsonencode(var.v))", v=value) == value


@settings(deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40))
def test_quoted_string_escapes_roundtrip(text: str) -> None:
    # HCL's escapes are \n \r \t \" \\ \uXXXX; $ and % are doubled before { to stay literal.
    simple = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
    body = "".join(simple.get(c) or (f"\\u{ord(c):04x}" if ord(c) < 32 else c) for c in text)
    literal = '"' + body.replace("${", "$${").replace("%{", "%%{") + '"'
    assert ev(literal) == text


@settings(deadline=None)
@given(st.text(alphabet="ab ${}%~\n", max_size=30))
def test_yamlencode_yamldecode_roundtrip_for_strings(text: str) -> None:
    assert ev("yamldecode(yamlencode(var.t))", t={"k": text}) == {"k": text}
