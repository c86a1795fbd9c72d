"""The text of `factory inspect`: Packer's layout (variables, locals, builds with sources and steps), stable
for golden tests, sensitive values masked."""

from __future__ import annotations

from factory import secrets
from factory.template.model import Build, PostProcessorSpec, Project, ProvisionerSpec
from factory.template.types import render


def render_inspect(project: Project, sensitive_locals: frozenset[str] = frozenset()) -> str:
    """Everything a user wants to check before building, in a stable order."""
    out = ["> input-variables:", ""]
    for name, var in sorted(project.variables.items()):
        value = secrets.MASK if var.sensitive else render(var.value)
        out.append(f"var.{name}: {value}")
    out += ["", "> local-variables:", ""]
    for name, value in sorted(project.locals.items()):
        shown = secrets.MASK if name in sensitive_locals else render(value)
        out.append(f"local.{name}: {shown}")
    out += ["", "> builds:", ""]
    for i, build in enumerate(project.builds):
        out += _build(build, i)
    return secrets.mask("\n".join(out).rstrip() + "\n")


def _build(build: Build, index: int) -> list[str]:
    title = build.name or f"<unnamed build {index}>"
    out = [f"  > {title}:", ""]
    if build.description:
        out += [f"    description: {build.description}", ""]
    out += ["    sources:", ""]
    out += [f"      {s.full_name}" for s in build.sources] or ["      (none selected)"]
    out += ["", "    provisioners:", ""]
    out += [f"      {_prov(p)}" for p in build.provisioners] or ["      (none)"]
    if build.error_cleanup_provisioner is not None:
        out += ["", "    error-cleanup-provisioner:", "", f"      {_prov(build.error_cleanup_provisioner)}"]
    out += ["", "    post-processors:", ""]
    if not build.post_processors:
        out.append("      (none)")
    for j, chain in enumerate(build.post_processors):
        out.append(f"      {j}:")
        out += [f"        {_pp(p)}" for p in chain]
        out.append("")
    return [*out, ""]


def _meta(name: str, only: tuple[str, ...], except_: tuple[str, ...]) -> str:
    parts = []
    if name:
        parts.append(f'name="{name}"')
    if only:
        parts.append("only=" + ",".join(only))
    if except_:
        parts.append("except=" + ",".join(except_))
    return f" ({'; '.join(parts)})" if parts else ""


def _prov(p: ProvisionerSpec) -> str:
    extra = _meta(p.name, p.only, p.except_)
    if p.pause_before:
        extra += f" pause_before={p.pause_before:g}s"
    if p.max_retries:
        extra += f" max_retries={p.max_retries}"
    if p.timeout is not None:
        extra += f" timeout={p.timeout:g}s"
    return p.type + extra


def _pp(p: PostProcessorSpec) -> str:
    extra = _meta(p.name, p.only, p.except_)
    if p.keep_input_artifact is not None:
        extra += f" keep_input_artifact={'true' if p.keep_input_artifact else 'false'}"
    return p.type + extra
