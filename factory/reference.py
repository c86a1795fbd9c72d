"""The reference page (docs/reference.md), generated from the declarations so it can never drift from the code.

Blocks come from the template language factory implements, functions from `factory.template.functions`, and
options from every registered component (`factory.options`); what factory does not support is derived from
the same sources (Packer's function list minus ours, options marked Support.IGNORED, PLANNED components).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from factory.options import Component, Kind, OptionInfo, Support, options_of
from factory.schema import registered

# Packer 1.16's built-in functions (hcl2template/functions.go), to list the ones factory lacks.
_PACKER_FUNCTIONS_TEXT = (
    "abs abspath alltrue anytrue aws_secretsmanager aws_secretsmanager_raw base64decode base64encode base64gzip "
    "basename bcrypt can ceil chomp chunklist cidrhost cidrnetmask cidrsubnet cidrsubnets coalesce coalescelist "
    "compact concat consul_key contains convert csvdecode dirname distinct element endswith env file filebase64 "
    "fileexists fileset flatten floor format formatdate formatlist indent index join jsondecode jsonencode keys "
    "legacy_isotime legacy_strftime length log lookup lower max md5 merge min parseint pathexpand pow range regex "
    "regexall regex_replace replace reverse rfc3339_parse rsadecrypt setintersection setproduct setunion sha1 "
    "sha256 sha512 signum slice sort split startswith strcontains strrev substr sum templatefile textdecodebase64 "
    "textencodebase64 timeadd timestamp title trim trimprefix trimspace trimsuffix try unix_timestamp_parse upper "
    "urlencode uuidv4 uuidv5 values vault yamldecode yamlencode zipmap"
)
PACKER_FUNCTIONS = frozenset(_PACKER_FUNCTIONS_TEXT.split())

BLOCKS: tuple[tuple[str, str], ...] = (
    ("packer { required_version, required_plugins { ... } }",
     "`required_version` is checked against the Packer language version factory follows. Plugins are built "
     "in: the official qemu, virtualbox and ansible plugins are accepted, others are warned about."),
    ('variable "NAME" { type, default, description, sensitive, validation { condition, '
     "error_message } }",
     "Types string, number, bool, list(T), set(T), map(T), object({...}), tuple([...]), any, with HCL's "
     "conversions. `env()` is allowed in defaults only. Sensitive values are masked wherever printed."),
    ("variables { NAME = default }", "Legacy form, as in Packer."),
    ("locals { NAME = expr } / local \"NAME\" { expression, sensitive }",
     "Locals may reference locals; evaluated in dependency order, cycles are reported."),
    ('source "TYPE" "NAME" { ... }', "Options of each source type are listed below."),
    ('data "TYPE" "NAME" { ... }',
     "`null` and `host-info` (Stromweld/packer-plugin-host-info: os_type, architecture, platform, version, "
     "family of this machine) are evaluated. Other data sources (plugins, `http`) yield an unknown value "
     "with a warning, so `try(data.x.y.attr, default)` falls back; using one outside `try`/`can` is an error."),
    ("build { name, description, sources = [...] }", "`-only` / `-except` select sources by `TYPE.NAME`."),
    ('build { source "TYPE.NAME" { name = ..., OPTION = ... } }', "Per-build overrides of a source's options."),
    ('build { provisioner "TYPE" { ... } }', "Run in order; meta-arguments below."),
    ('build { error-cleanup-provisioner "TYPE" { ... } }', "Runs when a build fails."),
    ('build { post-processor "TYPE" { ... } }', "A chain of one post-processor."),
    ("build { post-processors { post-processor ... } }", "A chain: each post-processor gets the previous "
     "one's artifact (`keep_input_artifact` as in Packer)."),
)

META_ARGUMENTS: tuple[tuple[str, str], ...] = (
    ("provisioner", "`name`, `only`, `except`, `override = { \"TYPE.NAME\" = { ... } }`, `pause_before`, "
     "`max_retries`, `timeout` (`continue_on_error` is accepted, not acted on)"),
    ("post-processor", "`name`, `only`, `except`, `keep_input_artifact`"),
)

NOT_SUPPORTED: tuple[str, ...] = (
    "Source types other than those listed above (e.g. `vmware-iso`, `hyperv-iso`, cloud builders): an unselected "
    "source of such a type is warned about; selecting one is an error.",
    "`hcp_packer_registry` blocks (accepted in `build`, ignored: there is no HCP on an air-gapped host).",
    "The WinRM communicator (`communicator = \"winrm\"`).",
    "The Packer CLI command `fix`.",
)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(o: OptionInfo) -> str:
    if o.required:
        return "required"
    if o.default is None:
        return "—"
    return f"`{json.dumps(o.default)}`"


def _option_row(o: OptionInfo, planned: bool) -> str:
    notes = []
    if o.support is Support.IGNORED and not planned:
        notes.append("**Accepted, not acted on.**")
    if o.factory_only:
        notes.append("*factory only.*")
    if o.sensitive:
        notes.append("*Sensitive.*")
    help_text = " ".join([*notes, o.help]) if notes else o.help
    return f"| `{o.name}` | `{_cell(o.type_name)}` | {_cell(_default(o))} | {_cell(help_text)} |"


def _component(cls: type[Component]) -> list[str]:
    planned = bool(getattr(cls, "PLANNED", False))
    title = {Kind.SOURCE: "source", Kind.PROVISIONER: "provisioner", Kind.POST_PROCESSOR: "post-processor",
             Kind.DATA: "data"}[cls.kind]
    out = [f"### {title} \"{cls.type_name}\"", "", cls.summary or (cls.__doc__ or "").strip(), ""]
    if planned:
        out += ["> **Not implemented yet**: declared so templates using it validate and `inspect` shows it; "
                "`factory build` refuses it.", ""]
    options = options_of(cls)
    ignored = [o.name for o in options if o.support is Support.IGNORED]
    if ignored and not planned:
        out += [f"{len(options) - len(ignored)} of {len(options)} options are acted on; the others are accepted "
                "for compatibility and warned about.", ""]
    out += ["| Option | Type | Default | Description |", "|---|---|---|---|"]
    out += [_option_row(o, planned) for o in sorted(options, key=lambda o: o.name)]
    return [*out, ""]


def _functions() -> list[str]:
    from factory.template.functions import FUNCTIONS, SPECIAL_DOCS

    out = ["## Functions", "", f"{len(FUNCTIONS) + len(set(SPECIAL_DOCS) - set(FUNCTIONS))} built-in functions, "
           "as in Packer. `env()` works only in variable defaults.", ""]
    families: dict[str, list[Any]] = {}
    for fn in FUNCTIONS.values():
        families.setdefault(fn.family, []).append(fn)
    for family in sorted(families):
        out += [f"### {family}", "", "| Function | Description |", "|---|---|"]
        for fn in sorted(families[family], key=lambda f: f.name):
            out.append(f"| `{_cell(fn.signature)}` | {_cell(SPECIAL_DOCS.get(fn.name, fn.doc))} |")
        out.append("")
    special = sorted(set(SPECIAL_DOCS) - set(FUNCTIONS))
    if special:
        out += ["### special forms", "", "| Function | Description |", "|---|---|"]
        out += [f"| `{name}(...)` | {_cell(SPECIAL_DOCS[name])} |" for name in special]
        out.append("")
    missing = sorted(set(PACKER_FUNCTIONS) - set(FUNCTIONS) - set(SPECIAL_DOCS))
    if missing:
        out += ["Packer functions factory does not provide (calling one is an error naming the nearest "
                "function): " + ", ".join(f"`{m}`" for m in missing) + ".", ""]
    return out


def _streams() -> list[str]:
    """The build's output streams: Packer's machine-readable lines, the JSON events, the metrics."""
    from dataclasses import fields

    from factory.events import KIND_HELP, Event
    from factory.streams.metrics import METRICS

    out = ["## Build output streams", "",
           "All fed by the one event bus; every text passes through the secrets mask.", "",
           "`-machine-readable`: Packer's format on stdout, one `timestamp,target,type,data...` line per message "
           "(Unix seconds; target empty for `ui` lines, the build's name for machine messages). Data fields are "
           "escaped as Packer does: `,` as `%!(PACKER_COMMA)`, carriage return as `\\r`, newline as `\\n`. "
           "`ui,say` / `ui,message` / `ui,error` carry the console's lines (`==> build: ...`); at the end "
           "`error-count,N`, `BUILD,error,TEXT`, `BUILD,artifact-count,N` and "
           "`BUILD,artifact,I,builder-id|id|string|files-count|file,J,PATH|end` as in `packer build`.", "",
           "`--events FILE|-`: one JSON object per event; empty fields are left out.", "",
           "| Field | Meaning |", "|---|---|"]
    out += [f"| `{f.metadata.get('json', f.name)}` | {_cell(f.metadata.get('help', ''))} |" for f in fields(Event)]
    out += ["", "| Event type | Meaning |", "|---|---|"]
    out += [f"| `{kind.value}` | {_cell(text)} |" for kind, text in KIND_HELP.items()]
    out += ["", "`--metrics-file PATH` (Prometheus text format, rewritten atomically every few seconds and at the "
            "end) and `--metrics-port N` (http://127.0.0.1:N/metrics while the builds run):", "",
            "| Metric | Type | Labels | Meaning |", "|---|---|---|---|"]
    out += [f"| `{m.exposed}` | {m.kind.__name__.lower()} | {', '.join(m.labels) or '-'} | {_cell(m.help)} |"
            for m in METRICS]
    return [*out, ""]


def render_reference(commands: Sequence[str] = ()) -> str:
    """The full text of docs/reference.md; `commands` is the command-line section (the CLI layer renders it)."""
    out = ["# factory reference", "",
           "Generated by `factory docs` from the option declarations (`factory/schema/`) and the function "
           "registry; do not edit by hand: `factory docs` (from the repository root) rewrites it.", "",
           "## Blocks", "", "| Block | Notes |", "|---|---|"]
    out += [f"| `{_cell(block)}` | {_cell(note)} |" for block, note in BLOCKS]
    out += ["", "Meta-arguments (handled by the template layer for every type):", ""]
    out += [f"- `{kind}`: {text}" for kind, text in META_ARGUMENTS]
    out += ["", *_functions()]
    titles = {Kind.SOURCE: "Sources (builders)", Kind.PROVISIONER: "Provisioners",
              Kind.POST_PROCESSOR: "Post-processors", Kind.DATA: "Data sources"}
    for kind in Kind:
        components = registered(kind)
        if components:
            out += [f"## {titles[kind]}", ""]
            for cls in components.values():
                out += _component(cls)
    out += _streams()
    out += [*commands]
    out += ["## Not supported", ""]
    planned = [f"`{c.kind} \"{c.type_name}\"`" for k in Kind for c in registered(k).values()
               if getattr(c, "PLANNED", False)]
    if planned:
        out.append(f"- Declared but not implemented yet: {', '.join(planned)}.")
    out += [f"- {line}" for line in NOT_SUPPORTED]
    out.append("- Options marked **Accepted, not acted on.** above: factory warns when a template sets one.")
    return "\n".join(out).rstrip() + "\n"
