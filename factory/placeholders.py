"""Packer's Go-template placeholders, `{{ .Name }}` and `{{ .Name | urlquery }}`: the one expander used for
boot commands, qemuargs, cd/floppy/http content, provisioners' execute_command and post-processors' outputs."""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping

from factory.errors import FactoryError

PLACEHOLDER = re.compile(r"\{\{\s*\.(\w+)\s*(?:\|\s*(\w+)\s*)?\}\}")
FUNCTIONS = {"urlquery": urllib.parse.quote_plus}


def expand(text: str, values: Mapping[str, str], where: str) -> str:
    """Substitute each placeholder from values; an unknown name or function is an error naming where."""

    def sub(m: re.Match[str]) -> str:
        name, func = m.group(1), m.group(2)
        if name not in values:
            raise FactoryError(f"{where}: unknown placeholder {{{{.{name}}}}}",
                               hint="available: " + ", ".join(f"{{{{.{k}}}}}" for k in sorted(values)))
        if func is None:
            return values[name]
        if func not in FUNCTIONS:
            raise FactoryError(f"{where}: unknown template function {func!r}", hint="supported: "
                               + ", ".join(sorted(FUNCTIONS)))
        return FUNCTIONS[func](values[name])

    return PLACEHOLDER.sub(sub, text)
