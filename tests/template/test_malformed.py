"""Malformed templates: each is reported with file:line:column, the block path and a useful message."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory.errors import FactoryError
from factory.template import load

OK_SOURCE = 'source "qemu" "a" {\n  iso_url = "x.iso"\n}\n'
OK_BUILD = 'build {\n  sources = ["source.qemu.a"]\n}\n'

# (name, template text, extra load() kwargs, expected substrings of the rendered error)
CASES: list[tuple[str, str, dict[str, object], list[str]]] = [
    ("unclosed block", 'source "qemu" "a" {\n  cpus = 2\n', {}, ["main.pkr.hcl:", "unexpected end of file"]),
    ("missing equals", 'locals {\n  a "x"\n}\n', {}, ["main.pkr.hcl:3:1", 'syntax error: unexpected "}"']),
    ("colon instead of equals", 'locals {\n  a: 1\n}\n', {}, ["main.pkr.hcl:2:4", 'unexpected ":"; expected "="',
                                                              "  |   a: 1"]),
    ("missing value", 'locals {\n  a = {\n    c =\n  }\n}\n', {},
     ["main.pkr.hcl:3:8", "unexpected end of line; expected a value"]),
    ("extra closing brace", OK_SOURCE + OK_BUILD + "}\n", {}, ["main.pkr.hcl:7:1", "expected end of file"]),
    ("missing comma in list", 'locals {\n  a = ["x" "y"]\n}\n', {}, ["main.pkr.hcl:2:12", 'expected "," or "]"']),
    ("bad character", 'locals {\n  a = 1 @ 2\n}\n', {}, ["main.pkr.hcl:2:", "syntax error"]),
    ("unterminated string", 'locals {\n  a = "abc\n}\n', {}, ["main.pkr.hcl:2:8", "unclosed block, bracket or string"]),
    ("unknown top-level block", OK_SOURCE + OK_BUILD + 'sorce "qemu" "b" {}\n', {},
     ["main.pkr.hcl:7:1", 'unsupported block type "sorce"', 'did you mean "source"?']),
    ("top-level attribute", 'x = 1\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:1:1", 'unexpected attribute "x"']),
    ("unknown option with suggestion", 'source "qemu" "a" {\n  iso_ulr = "x.iso"\n}\n' + OK_BUILD, {},
     ["main.pkr.hcl:2:3", "source.qemu.a.iso_ulr", 'unknown option "iso_ulr" for source "qemu"',
      'did you mean "iso_url"?']),
    ("wrong option type", 'source "qemu" "a" {\n  cpus = "many"\n}\n' + OK_BUILD, {},
     ["main.pkr.hcl:2:3", "invalid value for cpus", "a number is required"]),
    ("list for a string option", 'source "qemu" "a" {\n  iso_url = ["a", "b"]\n}\n' + OK_BUILD, {},
     ["main.pkr.hcl:2:3", "invalid value for iso_url", "a string is required"]),
    ("bad duration", 'source "qemu" "a" {\n  boot_wait = "10"\n}\n' + OK_BUILD, {},
     ["main.pkr.hcl:2:3", "invalid boot_wait '10'", 'write "10s"']),
    ("undeclared variable", OK_SOURCE.replace('"x.iso"', "var.iso") + OK_BUILD, {},
     ["main.pkr.hcl:2:13", "source.qemu.a.iso_url", 'reference to undeclared variable "var.iso"']),
    ("variable typo suggestion", 'variable "iso_url" {\n  default = "x"\n}\n'
     + OK_SOURCE.replace('"x.iso"', "var.iso_ur") + OK_BUILD, {},
     ["main.pkr.hcl:5:13", 'did you mean "var.iso_url"?']),
    ("local typo suggestion", 'locals {\n  version = "12"\n  name = "d-${local.verison}"\n}\n' + OK_SOURCE + OK_BUILD,
     {}, ["main.pkr.hcl:3:15", "local.name", 'did you mean "local.version"?']),
    ("locals cycle", 'locals {\n  a = local.b\n  b = local.a\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:", "locals reference each other in a cycle"]),
    ("self-referencing local", 'locals {\n  a = "${local.a}x"\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:3", "cycle: a → a"]),
    ("unknown function", 'locals {\n  a = uppercase("x")\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:7", 'call to unknown function "uppercase"']),
    ("function wrong arity", 'locals {\n  a = join(",")\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:7", "join(): join needs at least one list"]),
    ("env outside variable default", 'locals {\n  home = env("HOME")\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:10", "env() can only be used in a variable's default value"]),
    ("required variable missing", 'variable "password" {\n  type = string\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:1:1", 'variable "password" is required but has no value', "PKR_VAR_password"]),
    ("variable default of wrong type", 'variable "n" {\n  type = number\n  default = "many"\n}\n'
     + OK_SOURCE + OK_BUILD, {}, ["main.pkr.hcl:3:3", 'invalid default value for variable "n"']),
    ("validation fails", 'variable "os" {\n  default = "arch"\n  validation {\n    condition = contains(["debian"],'
     ' var.os)\n    error_message = "The os must be debian."\n  }\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:4:5", "The os must be debian."]),
    ("bad type constraint", 'variable "x" {\n  type = lisst(string)\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:10", "invalid type constraint"]),
    ("duplicate variable", 'variable "a" {\n  default = 1\n}\nvariable "a" {\n  default = 2\n}\n' + OK_SOURCE
     + OK_BUILD, {}, ["main.pkr.hcl:4:1", 'variable "a" is declared twice']),
    ("duplicate attribute", 'source "qemu" "a" {\n  cpus = 1\n  cpus = 2\n}\n' + OK_BUILD, {},
     ["main.pkr.hcl:3:3", 'attribute "cpus" is set twice']),
    ("duplicate source", OK_SOURCE + OK_SOURCE + OK_BUILD, {}, ["main.pkr.hcl:4:1", 'duplicate source "qemu.a"']),
    ("undeclared source in build", OK_SOURCE + 'build {\n  sources = ["source.qemu.b"]\n}\n', {},
     ["main.pkr.hcl:5:14", "build.sources[0]", 'reference to undeclared source "source.qemu.b"']),
    ("unknown provisioner type", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n  provisioner "shel" {\n'
     '    inline = ["x"]\n  }\n}\n', {}, ["main.pkr.hcl:6:3", "build.provisioner[0]",
                                         'unknown provisioner type "shel"', 'did you mean "shell"?']),
    ("unknown provisioner option", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n  provisioner "shell" {\n'
     '    inlnie = ["x"]\n  }\n}\n', {}, ["main.pkr.hcl:7:5", "build.provisioner[0].inlnie",
                                         'did you mean "inline"?']),
    ("missing required provisioner option", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n'
     '  provisioner "file" {\n    source = "a"\n  }\n}\n', {},
     ["main.pkr.hcl:6:3", 'missing required option "destination" for provisioner "file"']),
    ("bad pause_before", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n  provisioner "shell" {\n'
     '    inline = ["x"]\n    pause_before = "soon"\n  }\n}\n', {},
     ["main.pkr.hcl:8:5", "build.provisioner[0].pause_before", "invalid pause_before"]),
    ("only is not a list", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n  provisioner "shell" {\n'
     '    inline = ["x"]\n    only = "qemu.a"\n  }\n}\n', {}, ["main.pkr.hcl:8:5", "only must be a list"]),
    ("unknown post-processor option", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n'
     '  post-processor "manifest" {\n    outptu = "m.json"\n  }\n}\n', {},
     ["main.pkr.hcl:7:5", "build.post-processor[0].outptu", 'did you mean "output"?']),
    ("unsupported build argument", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n  nmae = "x"\n}\n', {},
     ["main.pkr.hcl:6:3", 'unsupported argument "nmae" in a build block']),
    ("unknown data source used outside try", 'data "amazon-ami" "base" {\n  region = "x"\n}\n'
     + OK_SOURCE.replace('"x.iso"', "data.amazon-ami.base.id") + OK_BUILD, {},
     ["main.pkr.hcl:5:3", "the value of iso_url is not known", "try(..., default)"]),
    ("selected unknown source type", 'source "hyperv-iso" "a" {\n  x = 1\n}\nbuild {\n'
     '  sources = ["source.hyperv-iso.a"]\n}\n', {}, ["main.pkr.hcl:5:14", 'unknown source type "hyperv-iso"']),
    ("index out of range", 'locals {\n  a = ["x"][3]\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:12", "index 3 out of range"]),
    ("null in template", 'variable "v" {\n  default = null\n}\nlocals {\n  a = "x-${var.v}"\n}\n' + OK_SOURCE
     + OK_BUILD, {}, ["main.pkr.hcl:5:12", "local.a", "the expression is null"]),
    ("unbalanced directive", 'locals {\n  a = "%{ if true }x"\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:", "without a matching %{ endif }"]),
    ("required_version not met", 'packer {\n  required_version = ">= 9.0.0"\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:3", "this template requires Packer >= 9.0.0"]),
    ("-var for undeclared variable", OK_SOURCE + OK_BUILD, {"vars": ["nope=1"]},
     ['-var "nope": no variable named "nope" is declared']),
    ("-var value of wrong type", 'variable "n" {\n  type = number\n  default = 1\n}\n' + OK_SOURCE + OK_BUILD,
     {"vars": ["n=lots"]}, ['invalid value for variable "n"', "-var n"]),
    ("only matches nothing", OK_SOURCE + OK_BUILD, {"only": ["virtualbox-iso.*"]},
     ["no source matches the -only/-except filters"]),
    ("no build block", OK_SOURCE, {}, ["the template has no build block"]),
    ("dynamic block without content", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n'
     '  dynamic "provisioner" {\n    for_each = [1]\n  }\n}\n', {},
     ["main.pkr.hcl:6:3", "a dynamic block needs one label, for_each and one content block"]),
    ("dynamic for_each not a collection", OK_SOURCE + 'build {\n  sources = ["source.qemu.a"]\n'
     '  dynamic "provisioner" {\n    for_each = 3\n    labels = ["shell"]\n    content {}\n  }\n}\n', {},
     ["main.pkr.hcl:7:5", "for_each must be a list, set or map"]),
    ("variable default referencing a variable", 'variable "a" {\n  default = "x"\n}\nvariable "b" {\n'
     '  default = "${var.a}-y"\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:5:16", "references to var. are not allowed here", "compute derived values in a locals"]),
    ("source.name in locals", 'locals {\n  n = source.name\n}\n' + OK_SOURCE + OK_BUILD, {},
     ["main.pkr.hcl:2:7", "source.* is not available here"]),
    ("build source block overwriting a field", OK_SOURCE + 'build {\n  source "source.qemu.a" {\n'
     '    iso_url = "y.iso"\n  }\n}\n', {},
     ["main.pkr.hcl:6:5", '"iso_url" is set both in source "qemu" "a" and in this build\'s source block']),
    ("heredoc with bad interpolation", 'locals {\n  a = <<EOF\nline ${var.nope}\nEOF\n}\n' + OK_SOURCE + OK_BUILD,
     {}, ["main.pkr.hcl:3:8", 'reference to undeclared variable "var.nope"']),
]


@pytest.mark.parametrize(("text", "kwargs", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_template(tmp_path: Path, text: str, kwargs: dict[str, object], expected: list[str]) -> None:
    (tmp_path / "main.pkr.hcl").write_text(text)
    with pytest.raises(FactoryError) as exc:
        load(tmp_path, env={}, **kwargs)  # type: ignore[arg-type]
    rendered = exc.value.render()
    for part in expected:
        assert part in rendered, f"{part!r} not in:\n{rendered}"
    assert "Traceback" not in rendered


def test_a_template_or_var_file_that_is_not_a_file_says_so(tmp_path: Path) -> None:
    (tmp_path / "main.pkr.hcl").write_text(OK_SOURCE + OK_BUILD)
    (tmp_path / "vars.pkrvars.hcl").mkdir()
    for name, says in (("vars.pkrvars.hcl", "is not a file"), ("gone.pkrvars.hcl", "does not exist")):
        with pytest.raises(FactoryError) as exc:
            load(tmp_path, env={}, var_files=[tmp_path / name])
        assert f"variable file {tmp_path / name} {says}" in exc.value.render()
    with pytest.raises(FactoryError, match="template /dev/null is neither a file nor a folder"):
        load(Path("/dev/null"), env={})


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "main.pkr.hcl").write_text(
        'source "qemu" "a" {\n  cpuz = 2\n  memory = "lots"\n}\n'
        'build {\n  sources = ["source.qemu.a"]\n  provisioner "shell" {\n    inline = [var.x]\n  }\n}\n')
    with pytest.raises(FactoryError) as exc:
        load(tmp_path, env={})
    rendered = exc.value.render()
    assert "main.pkr.hcl:2:3" in rendered and "main.pkr.hcl:3:3" in rendered and "main.pkr.hcl:8:15" in rendered


def test_error_shows_the_offending_line_with_a_caret(tmp_path: Path) -> None:
    (tmp_path / "main.pkr.hcl").write_text(OK_SOURCE.replace('"x.iso"', "var.iso") + OK_BUILD)
    with pytest.raises(FactoryError) as exc:
        load(tmp_path, env={})
    assert exc.value.render().splitlines()[1:3] == ["  |   iso_url = var.iso", "  |             ^"]


VALID = (OK_SOURCE.replace('"x.iso"', '"${var.name}-${local.n}.iso"')
         + 'variable "name" {\n  default = "d"\n}\nlocals {\n  n = [for i in range(3) : i * 2][1]\n'
         '  s = "%{ if true }a%{ endif }${upper("b")}"\n}\n'
         + 'build {\n  sources = ["source.qemu.a"]\n  provisioner "shell" {\n    inline = ["echo ${local.s}"]\n'
         '  }\n}\n')


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(VALID)), st.sampled_from(list('{}[]()"$%~=.,:<>!?*+-\n #\\ax1')),
                          st.booleans()), min_size=1, max_size=4))
def test_mangled_templates_never_raise_anything_but_a_located_error(
        tmp_path: Path, edits: list[tuple[int, str, bool]]) -> None:
    text = list(VALID)
    for pos, ch, insert in edits:
        pos = min(pos, len(text) - 1)
        if insert:
            text.insert(pos, ch)
        else:
            text[pos] = ch
    (tmp_path / "main.pkr.hcl").write_text("".join(text))
    try:
        load(tmp_path, env={})
    except FactoryError as exc:
        assert exc.render()
        errors = getattr(exc, "errors", [exc])
        assert all(e.where is None or e.where.line >= 0 for e in errors)
