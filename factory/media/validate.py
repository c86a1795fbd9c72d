"""Validators for unattended installer configs, run before any media is written.

Each returns nothing and raises FactoryErrors whose messages start with the field at fault
(`autoinstall.identity.username: required`, `ks.cfg:12: autopart: ...`, `preseed.cfg:3: ...`).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import warnings
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from factory import events, run
from factory.errors import FactoryError, FactoryErrors, Location
from factory.options import suggest

SCHEMA_ENV = "FACTORY_SUBIQUITY_SCHEMA"
SCHEMA_NAMES = ("subiquity-autoinstall-24.04.json", "subiquity-autoinstall-main.json", "autoinstall-schema.json")
# cloud-config keys factory writes or users commonly add, with the JSON type cloud-init expects.
CLOUD_CONFIG_TYPES: dict[str, type | tuple[type, ...]] = {
    "hostname": str, "fqdn": str, "packages": list, "runcmd": list, "bootcmd": list, "users": list,
    "ssh_authorized_keys": list, "write_files": list, "timezone": str, "locale": str,
    "package_update": bool, "package_upgrade": bool, "ssh_pwauth": (bool, str), "chpasswd": dict,
    "power_state": dict, "apt": dict, "growpart": dict, "autoinstall": dict,
}


def _errors(problems: list[tuple[str, str]], file: str) -> FactoryErrors | FactoryError:
    errs = [FactoryError(f"{field}: {msg}", where=Location(file)) for field, msg in problems]
    return errs[0] if len(errs) == 1 else FactoryErrors(errs)


# --- Ubuntu autoinstall (cloud-config user-data) ------------------------------------------------------------------

def schema_path() -> Path | None:
    """Subiquity's autoinstall JSON schema, looked up at runtime (factory does not vendor it).

    Only where the user points: FACTORY_SUBIQUITY_SCHEMA names the file (or a folder holding it).
    """
    env = os.environ.get(SCHEMA_ENV)
    if not env:
        return None
    cand = Path(env)
    if cand.is_file():
        return cand
    for name in SCHEMA_NAMES:
        if (cand / name).is_file():
            return cand / name
    raise FactoryError(f"{SCHEMA_ENV}={env} does not name subiquity's autoinstall schema",
                       hint=f"point it at {SCHEMA_NAMES[0]} (or a folder holding it)")


_notice = {"given": False}


def reset_schema_notice() -> None:
    """Say the missing-schema notice again (once per process otherwise)."""
    _notice["given"] = False


@cache
def _load_schema(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise FactoryError(f"cannot read the autoinstall schema {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise FactoryError(f"the autoinstall schema {path} is not a JSON object")
    return data


def check_user_data(text: str, file: str = "nocloud/user-data") -> None:
    """Cloud-config rules plus subiquity's autoinstall schema for an autoinstall user-data file."""
    first = text.split("\n", 1)[0].rstrip()
    if first != "#cloud-config":
        raise FactoryError("user-data: the first line must be '#cloud-config'", where=Location(file, 1),
                           hint="cloud-init ignores user-data without the header, so the install would not start")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise FactoryError(f"user-data: invalid YAML: {getattr(exc, 'problem', exc)}",
                           where=Location(file, line, col)) from exc
    if not isinstance(data, dict):
        raise FactoryError("user-data: must be a YAML mapping of cloud-config keys", where=Location(file))
    problems = _cloud_config_problems(data)
    auto = data.get("autoinstall")
    if not isinstance(auto, dict):
        problems.append(("autoinstall", "required: a mapping with the installer's answers"))
    else:
        problems += autoinstall_problems(auto)
    if problems:
        raise _errors(problems, file)


def _cloud_config_problems(data: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    for key, want in CLOUD_CONFIG_TYPES.items():
        if key in data and not isinstance(data[key], want):
            names = " or ".join(t.__name__ for t in (want if isinstance(want, tuple) else (want,)))
            problems.append((key, f"must be a {_json_type(names)}, not {_json_type(type(data[key]).__name__)}"))
    return problems


def _json_type(py: str) -> str:
    return {"str": "string", "list": "list", "dict": "mapping", "bool": "boolean", "int": "integer",
            "NoneType": "null"}.get(py, py)


def autoinstall_problems(auto: dict[str, Any]) -> list[tuple[str, str]]:
    """Problems in the autoinstall section: the schema when found, unknown top-level keys always."""
    path = schema_path()
    if path is None:
        if not _notice["given"]:
            _notice["given"] = True
            events.warn(f"subiquity's autoinstall schema was not found (set {SCHEMA_ENV} to subiquity's "
                    "autoinstall-schema.json to check every field); checking structure only")
        problems = [] if auto.get("version") == 1 else [("autoinstall.version", "must be 1")]
        return problems
    schema = _load_schema(path)
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    problems = [_describe(err) for err in sorted(validator.iter_errors(auto), key=lambda e: list(e.absolute_path))]
    # The schema allows any top-level key, but subiquity drops (v1) or rejects (v2) unknown ones; a typo
    # there silently loses an answer, so refuse it here.
    known = set(schema.get("properties", {}))
    for key in auto:
        if known and key not in known:
            close = suggest(key, known)
            problems.append((f"autoinstall.{key}",
                             "unknown key" + (f" (did you mean {close!r}?)" if close else "")))
    return problems


def _describe(err: Any) -> tuple[str, str]:
    field = ".".join(["autoinstall", *(str(p) for p in err.absolute_path)])
    if err.validator == "required":
        missing = re.match(r"'([^']+)' is a required property", err.message)
        if missing:
            return f"{field}.{missing.group(1)}", "required"
    if err.validator == "enum":
        return field, f"{err.instance!r} is not one of {', '.join(map(repr, err.validator_value))}"
    return field, err.message


# --- RHEL-family kickstart -----------------------------------------------------------------------------------------

def check_kickstart(text: str, file: str = "ks.cfg", version: str = "RHEL9") -> None:
    """pykickstart's parser for the target version; deprecated commands count as errors (as ksvalidator does)."""
    from pykickstart.errors import KickstartError, KickstartParseError
    from pykickstart.parser import KickstartParser
    from pykickstart.version import makeVersion, stringToVersion

    handler = makeVersion(stringToVersion(version))
    parser = KickstartParser(handler, followIncludes=False, errorsAreFatal=True, missingIncludeIsFatal=False)
    lines = text.splitlines()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            parser.readKickstartFromString(text)
        except (KickstartError, KickstartParseError, Warning) as exc:
            lineno = getattr(exc, "lineno", 0) or 0
            raise FactoryError(_kickstart_message(exc, lines, lineno), where=Location(file, lineno),
                               hint=f"checked with pykickstart for {version}") from exc


def _kickstart_message(exc: BaseException, lines: list[str], lineno: int) -> str:
    text = str(getattr(exc, "value", "") or exc)
    text = re.sub(r"^The following problem occurred on line \d+ of the kickstart file:\s*", "", text).strip()
    command = ""
    if 0 < lineno <= len(lines):
        words = lines[lineno - 1].split()
        command = words[0] if words else ""
    return f"{command}: {text}" if command and not text.startswith(command) else text


# --- Debian preseed ------------------------------------------------------------------------------------------------

DEBCONF_CONF = """\
Config: configdb
Templates: templatedb

Name: configdb
Driver: File
Filename: {dir}/config.dat

Name: templatedb
Driver: File
Filename: {dir}/templates.dat
"""
DEBCONF_TYPES = {"string", "boolean", "select", "multiselect", "note", "text", "password", "title", "error"}


def check_preseed(text: str, file: str = "preseed.cfg") -> None:
    """debconf-set-selections -c (the syntax debconf itself applies) plus line-shape checks it only warns about."""
    with tempfile.TemporaryDirectory(prefix="factory-debconf-") as tmp:
        work = Path(tmp)
        (work / "preseed.cfg").write_text(text)
        # debconf locks its system database even for -c; a private one lets checks run in parallel (and
        # without root).
        (work / "debconf.conf").write_text(DEBCONF_CONF.format(dir=work))
        proc = run.run(["debconf-set-selections", "-c", work / "preseed.cfg"], check=False,
                       env={"DEBCONF_SYSTEMRC": str(work / "debconf.conf")})
    reported: list[tuple[bool, int, str]] = []
    for line in (proc.stderr or b"").decode(errors="replace").splitlines():
        m = re.search(r"on line (\d+)|skipping line (\d+)", line)
        if m:
            text_ = re.sub(r"^(error|warning): ", "", line.strip())
            reported.append((line.startswith("error"), int(m.group(1) or m.group(2)), text_))
    # debconf's errors first, then our line checks (debconf only warns about those and skips the line, so a
    # typo would silently drop an answer), then its warnings; one message per line.
    problems: dict[int, str] = {}
    for n, msg in [(n, m) for err, n, m in reported if err] + list(_preseed_line_problems(text.splitlines())):
        problems.setdefault(n, msg)
    for _, n, msg in reported:
        problems.setdefault(n, msg)
    if proc.returncode != 0 and not problems:
        problems[0] = f"debconf-set-selections -c failed with exit code {proc.returncode}"
    if problems:
        errs = [FactoryError(msg, where=Location(file, n)) for n, msg in sorted(problems.items())]
        raise errs[0] if len(errs) == 1 else FactoryErrors(errs)


def _preseed_line_problems(lines: Iterable[str]) -> Iterable[tuple[int, str]]:
    logical = ""
    start = 0
    for n, raw in enumerate(lines, 1):
        if not logical:
            start = n
        if raw.endswith("\\"):
            logical += raw[:-1]
            continue
        line, logical = (logical + raw).strip(), ""
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) < 3:
            yield start, f"expected 'owner question type value', got {line!r}"
        elif parts[2] not in DEBCONF_TYPES:
            yield start, f"{parts[1]}: unknown type {parts[2]!r} (one of {', '.join(sorted(DEBCONF_TYPES))})"
        elif parts[2] == "boolean" and (parts[3].strip() if len(parts) > 3 else "") not in ("true", "false"):
            yield start, f"{parts[1]}: a boolean must be true or false"
