"""Encoding functions: base64, CSV, JSON, YAML, URL."""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import urllib.parse
from functools import cache
from typing import TYPE_CHECKING, Any

from factory.template.functions import FuncError, function
from factory.template.functions.text import s
from factory.template.types import norm_number

if TYPE_CHECKING:
    import yaml


@function("base64encode", "encoding", "Base64-encodes a string's UTF-8 bytes.")
def base64encode(x: Any) -> str:
    return base64.b64encode(s(x).encode()).decode()


@function("base64decode", "encoding", "Decodes base64 into a UTF-8 string.")
def base64decode(x: Any) -> str:
    try:
        return base64.b64decode(s(x), validate=True).decode("utf-8")
    except (binascii.Error, ValueError) as exc:
        raise FuncError(f"invalid base64 data: {exc}") from None


@function("csvdecode", "encoding", "Parses CSV with a header row into a list of objects.")
def csvdecode(x: Any) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(s(x))))
    if not rows:
        return []
    header = rows[0]
    out = []
    for n, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise FuncError(f"CSV row {n} has {len(row)} fields, the header has {len(header)}")
        out.append(dict(zip(header, row, strict=True)))
    return out


def _plain(value: Any) -> Any:
    """JSON/YAML numbers as HCL numbers (1.0 → 1)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return norm_number(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


@function("jsondecode", "encoding", "Parses a JSON string into a value.")
def jsondecode(x: Any) -> Any:
    try:
        return _plain(json.loads(s(x)))
    except json.JSONDecodeError as exc:
        raise FuncError(f"invalid JSON: {exc}") from None


def dump_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: compact, keys sorted, <>& escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


@function("jsonencode", "encoding", "Encodes a value as compact JSON (keys sorted).")
def jsonencode(x: Any) -> str:
    return dump_json(x)


@function("yamldecode", "encoding", "Parses a YAML document into a value.")
def yamldecode(x: Any) -> Any:
    import yaml  # here, not at the top: every template load imports the functions, few templates read YAML

    try:
        return _plain(yaml.safe_load(s(x)))
    except yaml.YAMLError as exc:
        raise FuncError(f"invalid YAML: {exc}") from None


@cache
def _quoted_dumper() -> type[yaml.SafeDumper]:
    """Made on first use, so that yaml is imported only by templates that call yamlencode."""
    import yaml

    class QuotedDumper(yaml.SafeDumper):
        """Strings double-quoted, as cty's yamlencode writes them (so "yes" and "1" stay strings)."""

    def quoted_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')

    QuotedDumper.add_representer(str, quoted_str)
    return QuotedDumper


@function("yamlencode", "encoding", "Encodes a value as a YAML document (strings double-quoted).")
def yamlencode(x: Any) -> str:
    import yaml

    return yaml.dump(x, Dumper=_quoted_dumper(), sort_keys=True, default_flow_style=False, allow_unicode=True)


@function("urlencode", "encoding", "Escapes a string for a URL query (spaces become +).")
def urlencode(x: Any) -> str:
    return urllib.parse.quote_plus(s(x), safe="")


@function("base64gzip", "encoding", "Gzips a string and base64-encodes the result.")
def base64gzip(x: Any) -> str:
    import gzip

    return base64.b64encode(gzip.compress(s(x).encode(), mtime=0)).decode()


@function("textencodebase64", "encoding", "Base64 of a string encoded in a named character set.")
def textencodebase64(x: Any, encoding: Any) -> str:
    try:
        return base64.b64encode(s(x).encode(s(encoding, 1))).decode()
    except LookupError:
        raise FuncError(f"unknown encoding {encoding}", 1) from None


@function("textdecodebase64", "encoding", "Decodes base64 bytes in a named character set into a string.")
def textdecodebase64(x: Any, encoding: Any) -> str:
    try:
        return base64.b64decode(s(x)).decode(s(encoding, 1))
    except (LookupError, binascii.Error, UnicodeDecodeError) as exc:
        raise FuncError(f"cannot decode: {exc}") from None
