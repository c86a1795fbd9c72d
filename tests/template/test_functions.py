"""Every built-in function, with the examples and edge cases from Packer's (and HCL's) function docs."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from fixtures.hcl_eval import ev

from factory.template.expr import EvalError
from factory.template.functions import FUNCTIONS

CASES: list[tuple[str, Any]] = [
    # numeric
    ("abs(23)", 23), ("abs(0)", 0), ("abs(-12.4)", 12.4),
    ("ceil(5)", 5), ("ceil(5.1)", 6), ("floor(5)", 5), ("floor(4.9)", 4), ("floor(-4.1)", -5),
    ("log(16, 2)", 4), ("log(50, 10)", 1.6989700043360185),
    ("max(12, 54, 3)", 54), ("max([12, 54, 3]...)", 54), ("min(12, 54, 3)", 3),
    ('parseint("100", 10)', 100), ('parseint("FF", 16)', 255), ('parseint("-10", 16)', -16),
    ('parseint("1011111011101111", 2)', 48879), ('parseint("aA", 62)', 656), ('parseint("12", 36)', 38),
    ("pow(3, 2)", 9), ("pow(4, 0)", 1), ("pow(2, 0.5)", 2 ** 0.5),
    ("signum(-13)", -1), ("signum(0)", 0), ("signum(344)", 1),
    ("sum([10, 13, 6, 4.5])", 33.5),
    # string
    ('chomp("hello\\n")', "hello"), ('chomp("hello\\r\\n")', "hello"), ('chomp("hello\\n\\n")', "hello"),
    ('chomp("hello")', "hello"),
    ('format("Hello, %s!", "Ander")', "Hello, Ander!"), ('format("There are %d lights", 4)', "There are 4 lights"),
    ('format("%-5s|%5s|", "ab", "cd")', "ab   |   cd|"), ('format("%.2f", 3.14159)', "3.14"),
    ('format("%q", "x")', '"x"'), ('format("%t", true)', "true"), ('format("%x", 255)', "ff"),
    ('format("%v %v", [1, "a"], {a = 1})', '[1,"a"] {"a":1}'), ('format("%#v", "x")', '"x"'),
    ('format("100%%")', "100%"), ('format("%[2]s %[1]s", "a", "b")', "b a"), ('format("%05d", -42)', "-0042"),
    ('formatlist("Hello, %s!", ["Valentina", "Ander"])', ["Hello, Valentina!", "Hello, Ander!"]),
    ('formatlist("%s, %s!", "Salutations", ["Valentina", "Ander"])', ["Salutations, Valentina!",
                                                                      "Salutations, Ander!"]),
    ('indent(2, "[\\n  foo,\\n  bar,\\n]\\n")', "[\n    foo,\n    bar,\n  ]\n  "),
    ('join(", ", ["foo", "bar", "baz"])', "foo, bar, baz"), ('join(", ", ["foo"])', "foo"),
    ('join("-", ["a"], ["b", "c"])', "a-b-c"), ('join(",", [])', ""),
    ('lower("HELLO")', "hello"), ('upper("hello")', "HELLO"), ('title("hello world")', "Hello World"),
    ('replace("1 + 2 + 3", "+", "-")', "1 - 2 - 3"), ('replace("hello world", "world", "everybody")',
                                                       "hello everybody"),
    # Packer's replace (cty stdlib) is literal: "/.../" is not a regex there, as it is in Terraform.
    ('replace("hello /l+/", "/l+/", "<$1>")', "hello <$1>"), ('replace("hello", "/(l+)/", "x")', "hello"),
    ('regex("[a-z]+", "53453453.345345aaabbbccc23454")', "aaabbbccc"),
    ('regex("(\\\\d\\\\d\\\\d\\\\d)-(\\\\d\\\\d)-(\\\\d\\\\d)", "2019-02-01")', ["2019", "02", "01"]),
    ('regex("^(?:(?P<scheme>[^:/?#]+):)?(?://(?P<authority>[^/?#]*))?", "https://terraform.io/docs/")',
     {"scheme": "https", "authority": "terraform.io"}),
    ('regexall("[a-z]+", "1234abcd5678efgh9")', ["abcd", "efgh"]),
    ('length(regexall("[a-z]+", "1234abcd5678efgh9"))', 2), ('regexall("[a-z]+", "123")', []),
    ('regex_replace("hello world", "o", "0")', "hell0 w0rld"),
    ('regex_replace("2019-02-01", "(\\\\d+)-(\\\\d+)-(\\\\d+)", "$3/$2/$1")', "01/02/2019"),
    ('split(",", "foo,bar,baz")', ["foo", "bar", "baz"]), ('split(",", "foo")', ["foo"]), ('split(",", "")', [""]),
    ('split("", "")', []), ('split("", "ab")', ["a", "b"]),
    ('strrev("hello")', "olleh"), ('strrev("a ☃")', "☃ a"),
    ('substr("hello world", 1, 4)', "ello"), ('substr("🤔🤷", 0, 1)', "🤔"), ('substr("hello world", -5, -1)',
                                                                             "world"),
    ('substr("hello", 1, 100)', "ello"),
    ('trim("?!hello?!", "!?")', "hello"), ('trimprefix("helloworld", "hello")', "world"),
    ('trimprefix("helloworld", "cat")', "helloworld"), ('trimsuffix("helloworld", "world")', "hello"),
    ('trimspace("  hello\\n\\n")', "hello"),
    ('startswith("hello world", "hello")', True), ('startswith("hello world", "world")', False),
    ('endswith("hello world", "world")', True), ('strcontains("hello world", "wor")', True),
    ('strcontains("hello world", "cat")', False),
    # collection
    ('chunklist(["a", "b", "c", "d", "e"], 2)', [["a", "b"], ["c", "d"], ["e"]]),
    ('chunklist(["a", "b"], 0)', [["a", "b"]]),
    ('coalesce("a", "b")', "a"), ('coalesce("", "b")', "b"), ("coalesce(1, 2)", 1), ('coalesce(null, "x")', "x"),
    ('coalescelist(["a", "b"], ["c", "d"])', ["a", "b"]), ('coalescelist([], ["c", "d"])', ["c", "d"]),
    ('compact(["a", "", "b", null, "c"])', ["a", "b", "c"]),
    ('concat(["a", ""], ["b", "c"])', ["a", "", "b", "c"]),
    ('contains(["a", "b", "c"], "a")', True), ('contains(["a", "b", "c"], "d")', False),
    ('contains([1, 2], "1")', False),
    ('distinct(["a", "b", "a", "c", "d", "b"])', ["a", "b", "c", "d"]),
    ('element(["a", "b", "c"], 1)', "b"), ('element(["a", "b", "c"], 3)', "a"),
    ('flatten([["a", "b"], [], ["c"]])', ["a", "b", "c"]), ('flatten([[["a", "b"], []], ["c"]])', ["a", "b", "c"]),
    ('index(["a", "b", "c"], "b")', 1),
    ("keys({a = 1, c = 2, d = 3})", ["a", "c", "d"]), ("keys({d = 1, a = 2})", ["a", "d"]),
    ("values({a = 3, c = 2, d = 1})", [3, 2, 1]),
    ("length([])", 0), ('length(["a", "b"])', 2), ('length({"a" = "b"})', 1), ('length("hello")', 5),
    ('length("🤔")', 1),
    ('lookup({a = "ay", b = "bee"}, "a", "what?")', "ay"), ('lookup({a = "ay", b = "bee"}, "c", "what?")', "what?"),
    ('merge({a = "b", c = "d"}, {e = "f", c = "z"})', {"a": "b", "c": "z", "e": "f"}),
    ('merge({a = "b"}, {a = [1, 2], c = "z"}, {d = 3})', {"a": [1, 2], "c": "z", "d": 3}),
    ("range(3)", [0, 1, 2]), ("range(1, 4)", [1, 2, 3]), ("range(1, 8, 2)", [1, 3, 5, 7]),
    ("range(1, 4, 0.5)", [1, 1.5, 2, 2.5, 3, 3.5]), ("range(4, 1)", [4, 3, 2]), ("range(10, 5, -2)", [10, 8, 6]),
    ("range(0)", []),
    ("reverse([1, 2, 3])", [3, 2, 1]),
    ('setintersection(["a", "b"], ["b", "c"], ["b", "d"])', ["b"]),
    ('setproduct(["development", "staging"], ["app1", "app2"])',
     [["development", "app1"], ["development", "app2"], ["staging", "app1"], ["staging", "app2"]]),
    ('setunion(["a", "b"], ["b", "c"], ["d"])', ["a", "b", "c", "d"]),
    ('slice(["a", "b", "c", "d"], 1, 3)', ["b", "c"]),
    ('sort(["e", "d", "a", "x"])', ["a", "d", "e", "x"]), ("sort([3, 10])", ["10", "3"]),
    ('zipmap(["a", "b"], [1, 2])', {"a": 1, "b": 2}),
    ("alltrue([true, true])", True), ('alltrue(["true", false])', False), ("alltrue([])", True),
    ("anytrue([false, true])", True), ("anytrue([])", False),
    # encoding
    ('base64encode("Hello World")', "SGVsbG8gV29ybGQ="), ('base64decode("SGVsbG8gV29ybGQ=")', "Hello World"),
    ('csvdecode("a,b,c\\n1,2,3\\n4,5,6")', [{"a": "1", "b": "2", "c": "3"}, {"a": "4", "b": "5", "c": "6"}]),
    ('jsondecode("{\\"hello\\": \\"world\\"}")', {"hello": "world"}), ('jsondecode("true")', True),
    ('jsondecode("[1, 2.5]")', [1, 2.5]),
    ('jsonencode({"hello" = "world"})', '{"hello":"world"}'), ("jsonencode([1, true, null])", "[1,true,null]"),
    ('jsonencode("<&>")', '"\\u003c\\u0026\\u003e"'), ("jsonencode({b = 1, a = 2})", '{"a":2,"b":1}'),
    ('yamldecode("hello: world")', {"hello": "world"}), ('yamldecode("true")', True),
    ('yamldecode("{a: &foo [1, 2, 3], b: *foo}")', {"a": [1, 2, 3], "b": [1, 2, 3]}),
    ('yamlencode({"a" = "b", "c" = "d"})', '"a": "b"\n"c": "d"\n'),
    ('yamlencode({"foo" = [1, 2, 3], "bar" = "baz"})', '"bar": "baz"\n"foo":\n- 1\n- 2\n- 3\n'),
    ('urlencode("Hello World!")', "Hello+World%21"), ('urlencode("☃")', "%E2%98%83"),
    ('urlencode("foo:bar@localhost?foo=bar&bar=baz")', "foo%3Abar%40localhost%3Ffoo%3Dbar%26bar%3Dbaz"),
    ('textencodebase64("Hello World", "UTF-16LE")', "SABlAGwAbABvACAAVwBvAHIAbABkAA=="),
    ('textdecodebase64("SABlAGwAbABvACAAVwBvAHIAbABkAA==", "UTF-16LE")', "Hello World"),
    # filesystem (pure ones)
    ('basename("foo/bar/baz.txt")', "baz.txt"), ('basename("/")', "/"), ('dirname("foo/bar/baz.txt")', "foo/bar"),
    ('dirname("baz.txt")', "."), ('abspath("/a/b/../c")', "/a/c"),
    # hash
    ('md5("hello world")', "5eb63bbbe01eeed093cb22bb8f5acdc3"),
    ('sha1("hello world")', "2aae6c35c94fcfb415dbe95f408b9ce91ee846ed"),
    ('sha256("hello world")', "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9"),
    ('sha512("hello world")', "309ecc489c12d6eb4cc40f50c902f2b4d0ed77ee511a7c7a9bcd3ca86d4cd86f989dd35bc5ff49"
                              "9670da34255b45b0cfd830e81f605dcf7dc5542e93ae9cd76f"),
    ('uuidv5("dns", "www.terraform.io")', "a5008fae-b28c-5ba5-96cd-82b4c53552d6"),
    ('uuidv5("url", "https://www.terraform.io/")', "9db6f67c-dd95-5ea0-aa5b-e70e5c5f7cf5"),
    ('uuidv5("oid", "1.3.6.1.4")', "af9d40a5-7a36-5c07-b23a-851cd99fbfa5"),
    ('uuidv5("x500", "CN=Example,C=GB")', "84e09961-4aa4-57f8-95b7-03edb1073253"),
    ('uuidv5("6ba7b810-9dad-11d1-80b4-00c04fd430c8", "www.terraform.io")', "a5008fae-b28c-5ba5-96cd-82b4c53552d6"),
    # datetime
    ('formatdate("DD MMM YYYY hh:mm ZZZ", "2018-01-02T23:12:01Z")', "02 Jan 2018 23:12 UTC"),
    ('formatdate("EEEE, DD-MMM-YY hh:mm:ss ZZZ", "2018-01-02T23:12:01Z")', "Tuesday, 02-Jan-18 23:12:01 UTC"),
    ('formatdate("EEE, DD MMM YYYY hh:mm:ss ZZZ", "2018-01-02T23:12:01-08:00")',
     "Tue, 02 Jan 2018 23:12:01 -0800"),
    ('formatdate("MMM DD, YYYY", "2018-01-02T23:12:01Z")', "Jan 02, 2018"),
    ('formatdate("HH:mmaa", "2018-01-02T23:12:01Z")', "11:12pm"),
    ('formatdate("h\'h\'mm", "2018-01-02T23:12:01-08:00")', "23h12"),
    ('formatdate("YYYYMMDDhhmmss", "2024-06-30T01:02:03Z")', "20240630010203"),
    ('timeadd("2017-11-22T00:00:00Z", "10m")', "2017-11-22T00:10:00Z"),
    ('timeadd("2017-11-22T00:00:00Z", "-1h30m")', "2017-11-21T22:30:00Z"),
    ('timeadd("2017-11-22T00:00:00+01:00", "1.5h")', "2017-11-22T01:30:00+01:00"),
    ('rfc3339_parse("2023-07-25T23:43:16Z").unix', 1690328596),
    ('rfc3339_parse("2023-07-25 23:43:16Z")', {
        "year": 2023, "year_day": 206, "month": 7, "month_name": "July", "day": 25, "weekday": 2,
        "weekday_name": "Tuesday", "hour": 23, "minute": 43, "second": 16, "iso_year": 2023, "iso_week": 30,
        "unix": 1690328596}),
    ("unix_timestamp_parse(1690328596).rfc3339", "2023-07-25T23:43:16Z"),
    ("unix_timestamp_parse(0).weekday_name", "Thursday"),
    # network
    ('cidrhost("10.12.112.0/20", 16)', "10.12.112.16"), ('cidrhost("10.12.112.0/20", 268)', "10.12.113.12"),
    ('cidrhost("fd00:fd12:3456:7890:00a2::/72", 34)', "fd00:fd12:3456:7890::22"),
    ('cidrhost("10.0.0.0/24", -2)', "10.0.0.254"),
    ('cidrnetmask("172.16.0.0/12")', "255.240.0.0"),
    ('cidrsubnet("172.16.0.0/12", 4, 2)', "172.18.0.0/16"), ('cidrsubnet("10.1.2.0/24", 4, 15)', "10.1.2.240/28"),
    ('cidrsubnet("fd00:fd12:3456:7890::/56", 16, 162)', "fd00:fd12:3456:7800:a200::/72"),
    ('cidrsubnets("10.1.0.0/16", 4, 4, 8, 4)', ["10.1.0.0/20", "10.1.16.0/20", "10.1.32.0/24", "10.1.48.0/20"]),
    # conversion
    ('tobool("true")', True), ("tobool(false)", False), ("tobool(null)", None),
    ('tonumber("1")', 1), ('tonumber("1.5")', 1.5), ("tonumber(2)", 2),
    ("tostring(1)", "1"), ("tostring(true)", "true"), ('tostring("x")', "x"), ("tostring(2.5)", "2.5"),
    ('tolist(["a", "b"])', ["a", "b"]), ('tolist(["a", 1, true])', ["a", "1", "true"]),
    ('toset(["c", "b", "b"])', ["b", "c"]), ("toset([3, 1, 3])", [1, 3]),
    ('tomap({a = 1, b = "x"})', {"a": "1", "b": "x"}),
    ('convert(["a", 1], list(string))', ["a", "1"]), ('convert({a = "1"}, map(number))', {"a": 1}),
    ('convert({name = "x"}, object({name = string, size = optional(number)}))', {"name": "x", "size": None}),
    ('convert(["1", "2"], tuple([number, string]))', [1, "2"]),
    ('try(tonumber("x"), 7)', 7), ('try(tonumber("5"), 7)', 5), ('can(tonumber("x"))', False),
    ('can(regex("^a", "abc"))', True), ("try(var.missing, null)", None),
]


@pytest.mark.parametrize(("expr", "expected"), CASES, ids=[c[0] for c in CASES])
def test_function(expr: str, expected: Any) -> None:
    assert ev(expr) == expected


ERRORS = [
    ('parseint("12", 2)', 'cannot parse "12" as a base 2 integer'),
    ("log(-1, 10)", "positive"),
    ('tobool("yes")', "a bool is required"),
    ('tonumber("x")', "is not a number"),
    ('element([], 0)', "empty list"),
    ('regex("[a-z]+", "123")', "did not match"),
    ('lookup({a = 1}, "b")', 'no key "b"'),
    ('zipmap(["a"], [1, 2])', "1 keys but 2 values"),
    ('slice(["a"], 0, 5)', "out of range"),
    ('base64decode("!!")', "invalid base64"),
    ('jsondecode("{")', "invalid JSON"),
    ('formatdate("DD", "yesterday")', "RFC 3339"),
    ('timeadd("2017-11-22T00:00:00Z", "10 minutes")', "not a duration"),
    ('format("%d", 1.5)', "whole number"),
    ('format("%s %s", "a")', "not enough arguments"),
    ('file("/nonexistent/x")', "cannot read"),
    ("coalesce(null, \"\")", "no non-null"),
    ('upper("a", "b")', "takes 1 argument(s), got 2"),
    ('uuidv5("nope", "x")', "unknown namespace"),
    ('sum([])', "empty"),
    ('range(1, 10, -1)', "away from the limit"),
    ('setproduct(["a"])', "at least two"),
    ('convert("x", list(string))', "list(string) required"),
    ('try(tonumber("x"))', "no expression given to try() succeeded"),
    ('env("HOME")', "only be used in a variable's default"),
    ('nosuchfn(1)', 'unknown function "nosuchfn"'),
    ('uper("a")', 'did you mean "upper"'),
]


@pytest.mark.parametrize(("expr", "message"), ERRORS, ids=[e[0] for e in ERRORS])
def test_function_errors(expr: str, message: str) -> None:
    with pytest.raises(EvalError) as exc:
        ev(expr)
    assert message in exc.value.render()


def test_nondeterministic_functions_have_the_documented_shape() -> None:
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", ev("uuidv4()"))
    assert ev("uuidv4()") != ev("uuidv4()")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ev("timestamp()"))
    hashed = ev('bcrypt("hello world")')
    assert hashed.startswith("$2a$10$") and bcrypt.checkpw(b"hello world", hashed.encode())
    assert ev('bcrypt("x", 4)').startswith("$2a$04$")


def test_legacy_time_and_gzip_functions() -> None:
    import base64
    import gzip
    from datetime import UTC, datetime

    from factory.template.functions.datetime import go_time_format

    when = datetime(2018, 1, 2, 23, 12, 1, tzinfo=UTC)
    assert go_time_format("2006-01-02T15:04:05Z07:00", when) == "2018-01-02T23:12:01Z"
    assert go_time_format("Jan _2 03:04PM Monday", when) == "Jan  2 11:12PM Tuesday"
    assert go_time_format("20060102150405", when) == "20180102231201"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", ev('legacy_isotime("2006-01-02")'))
    assert ev('legacy_strftime("%Y")') == str(datetime.now(UTC).year)
    assert gzip.decompress(base64.b64decode(ev('base64gzip("test")'))) == b"test"


def test_fileset_over_an_unreadable_folder_is_a_located_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    """A folder under base that cannot be read (another user's, /proc) is the function's error, not an internal
    one. Permissions do not stop root, who runs CI, so the walk's failure is raised as the OS raises it."""
    def unreadable(self: Path, pattern: str) -> Any:
        raise PermissionError(13, "Permission denied", str(self / "secret"))

    monkeypatch.setattr(Path, "rglob", unreadable)
    with pytest.raises(EvalError, match=r"cannot list .*: .*secret: Permission denied"):
        ev(f'fileset("{tmp_path}", "**")')


def test_env_only_in_variable_defaults() -> None:
    assert ev('env("FOO")', env={"FOO": "bar"}, allow_env=True) == "bar"
    assert ev('env("UNSET")', env={}, allow_env=True) == ""


def test_file_functions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "http").mkdir()
    (tmp_path / "http" / "user-data").write_text("#cloud-config\n")
    (tmp_path / "http" / "sub").mkdir()
    (tmp_path / "http" / "sub" / "meta-data").write_text("x")
    (tmp_path / "t.pkrtpl.hcl").write_text("hostname: ${hostname}\n%{ for k in keys ~}\n- ${k}\n%{ endfor ~}\n")
    monkeypatch.chdir(tmp_path)
    assert ev('file("http/user-data")') == "#cloud-config\n"
    assert ev('fileexists("http/user-data")') is True and ev('fileexists("nope")') is False
    assert ev('fileset("http", "**")') == ["sub/meta-data", "user-data"]
    assert ev('fileset("http", "*")') == ["user-data"]
    assert ev('templatefile("t.pkrtpl.hcl", { hostname = "vm1", keys = ["a", "b"] })') == "hostname: vm1\n- a\n- b\n"
    assert ev('pathexpand("~/.ssh/id_rsa")') == os.path.expanduser("~/.ssh/id_rsa")
    assert ev('filebase64("http/sub/meta-data")') == "eA=="
    with pytest.raises(EvalError, match="is a directory"):
        ev('fileexists("http")')
    with pytest.raises(EvalError, match="unknown variable \"keys\""):
        ev('templatefile("t.pkrtpl.hcl", { hostname = "vm1" })')


def test_every_required_function_is_registered_with_a_doc() -> None:
    required = """abs ceil floor log max min parseint pow signum chomp format formatlist indent join lower upper
    replace regex regex_replace regexall split strrev substr title trim trimprefix trimsuffix trimspace
    chunklist coalesce coalescelist compact concat contains distinct element flatten index keys length
    lookup merge range reverse setintersection setproduct setunion slice sort values zipmap base64decode
    base64encode csvdecode jsondecode jsonencode yamldecode yamlencode urlencode abspath basename
    dirname pathexpand file fileexists fileset templatefile bcrypt md5 sha1 sha256 sha512 uuidv4 uuidv5
    formatdate timeadd timestamp can try convert tobool tolist tomap tonumber toset tostring startswith
    endswith strcontains alltrue anytrue sum env""".split()  # noqa: SIM905
    missing = [f for f in required if f not in FUNCTIONS]
    assert not missing
    assert all(fn.doc and "\n" not in fn.doc for fn in FUNCTIONS.values())
    assert FUNCTIONS["substr"].signature == "substr(x, offset, length)"
