"""Guard (in the spirit of virtinst's "declared option without a test"): every option declared in
factory/schema/cloud.py is set by a template in some cloud test, or declared Support.IGNORED (accepted, not acted
on). An option only in the schema and the reference is a promise nobody checked."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from factory.options import Support, options_of
from factory.schema.cloud import (
    AmazonImportPostProcessor,
    AzureImportPostProcessor,
    GoogleComputeImportPostProcessor,
)

HERE = Path(__file__).resolve().parent
SCHEMAS = (AmazonImportPostProcessor, AzureImportPostProcessor, GoogleComputeImportPostProcessor)
TYPES = tuple(s.type_name for s in SCHEMAS)
COMMON = ("keep_input_artifact",)       # every post-processor's option, declared once for all of them


def _template_texts(type_name: str) -> str:
    """The string literals (f-strings' literal parts included) of the cloud tests that write
    `post-processor "type_name"` blocks and no other cloud's: templates live there, and Python code does not count
    as setting an option. (A test mixing the clouds, the end-to-end one, cannot tell whose option a line is.)"""
    parts: list[str] = []
    for path in sorted(HERE.glob("test_*.py")):
        source = path.read_text()
        clouds = {t for t in TYPES if f'post-processor "{t}"' in source}
        if path.name == Path(__file__).name or clouds != {type_name}:
            continue
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                parts.append(node.value)
    return "\n".join(parts)


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda c: c.type_name)
def test_every_acted_cloud_option_is_set_by_a_test(schema: type) -> None:
    text = _template_texts(schema.type_name)
    names = [o.name for o in options_of(schema) if o.support is not Support.IGNORED] + list(COMMON)
    untested = [n for n in names if not re.search(rf"(?m)^\s*{re.escape(n)}\s*=", text)
                and not re.search(rf"[{{,]\s*{re.escape(n)}\s*=", text)]
    assert not untested, (f"{schema.type_name}: options acted on but set by no test template: {untested} "
                          "(test them against the servers, or declare them support=Support.IGNORED)")
