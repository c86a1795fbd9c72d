"""`factory submit`: validate locally, pack, store, defer one job on the queue the template's sources need."""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.errors import FactoryError
from factory.queue import blobs, bundle, db, routing, seal
from factory.queue.app import make_app

if TYPE_CHECKING:
    from factory.template import Project


@dataclass(frozen=True)
class Submitted:
    job_id: int
    queue: str
    bundle: str
    duplicate: bool = False     # the same template+vars was already waiting: job_id is that job


def queueing_lock(bundle_key: str, vars: list[str], only: list[str], except_: list[str],
                  secret_names: list[str] | None = None) -> str:
    """One pending job per template content + variables + selection. Secrets count by name only: a hash of a
    password would let whoever reads the database try guesses against it."""
    doc = {"bundle": bundle_key, "vars": sorted(vars), "only": sorted(only), "except": sorted(except_)}
    if secret_names:
        doc["secrets"] = sorted(secret_names)
    return "factory:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def check_buildable(project: Project, template: Path) -> None:
    """What `factory build` refuses before starting a VM, refused here before anything is queued."""
    from factory.steps.plan import refuse_unbuildable

    pairs = [(b, s) for b in project.builds for s in b.sources]
    if not pairs:
        raise FactoryError(f"{template}: nothing to build (no build block, or -only/-except excluded every source)")
    for b, source in pairs:
        refuse_unbuildable(b, source)


def submit(url: str, project: Project, template: Path, *, vars: list[str], var_files: list[Path],
           only: list[str], except_: list[str]) -> Submitted:
    """Pack and defer a loaded (validated) template; a duplicate of a waiting job is not queued again."""
    from procrastinate.exceptions import AlreadyEnqueued

    db.require_schema(url)
    check_buildable(project, template)
    queue = routing.queue_for(project.builds)
    split = secrets_of(url, project, template, vars, var_files)
    store = blobs.open_store(url)
    with tempfile.TemporaryDirectory(prefix="factory-submit-") as tmp:
        tar = Path(tmp, "bundle.tar")
        manifest = bundle.pack(template, [f for f in var_files if f not in split.var_files], project.variables, tar,
                               leave_out=frozenset(split.auto_files))
        key = store.put(tar)
    lock = queueing_lock(key, split.vars, only, except_, split.names())
    packed = iter(manifest.var_files)
    files: list[str | dict[str, str]] = [split.var_files[f] if f in split.var_files else next(packed)
                                         for f in var_files]
    args: dict[str, Any] = {"bundle": key, "template": manifest.template, "vars": split.vars,
                            "secret_vars": split.secret_vars, "var_files": files, "inputs": manifest.inputs,
                            "sealed_files": list(split.auto_files.values()),
                            "only": only, "except_": except_, "name": template.name,
                            "submitter": socket.gethostname()}
    app = make_app(url, sync=True)
    with app.open():
        try:
            job_id = app.configure_task(name=db.TASK, queue=queue, queueing_lock=lock).defer(**args)
        except AlreadyEnqueued:
            return Submitted(_waiting_job(url, lock), queue, key, duplicate=True)
    return Submitted(job_id, queue, key)


@dataclass
class Split:
    """The submit's variables: those stored as given, and the secrets, sealed to the queue key."""

    vars: list[str] = field(default_factory=list)
    secret_vars: list[dict[str, str]] = field(default_factory=list)     # {"name", "value": sealed}
    var_files: dict[Path, dict[str, str]] = field(default_factory=dict)  # file -> {"name", "sealed"}
    auto_files: dict[Path, dict[str, str]] = field(default_factory=dict)  # *.auto.pkrvars.* -> {"path", "sealed"}

    def names(self) -> list[str]:
        return ([v["name"] for v in self.secret_vars] + ["@" + f["name"] for f in self.var_files.values()]
                + ["@" + f["path"] for f in self.auto_files.values()])


def _assigned(path: Path) -> set[str]:
    """The variables a var file sets (it loaded once already, so it parses)."""
    if path.suffix == ".json":
        return set(json.loads(path.read_text()))
    from factory.template.parse import parse_file

    return set(parse_file(path, "variable file").attrs)


def secrets_of(url: str, project: Project, template: Path, vars: list[str], var_files: list[Path]) -> Split:
    """Split the submit's values: a -var of a sensitive variable, or whose value reaches a sensitive option (the
    template registered it as a secret when it loaded), and a var file (given, or a template folder's
    *.auto.pkrvars.*) that sets one, are sealed to the queue key; without a registered key they are refused,
    before anything is stored."""
    from factory import secrets
    from factory.template.loader import template_files

    sensitive = {n for n, v in project.variables.items() if v.sensitive}
    split = Split()
    found: list[tuple[str, str, bytes]] = []   # (what, name, plaintext)
    for item in vars:
        name, _, value = item.partition("=")
        if name.strip() in sensitive or secrets.mask(value) != value:
            found.append(("var", name.strip(), value.encode()))
        else:
            split.vars.append(item)
    for i, path in enumerate(var_files):
        text = path.read_text()
        if _assigned(path) & sensitive or secrets.mask(text) != text:
            found.append(("var-file", f"{i}-{path.name}", path.read_bytes()))
    autos = template_files(template)[2]  # a folder's *.auto.pkrvars.*: they would travel in the bundle
    for path in autos:
        text = path.read_text()
        if _assigned(path) & sensitive or secrets.mask(text) != text:
            found.append(("file", f"template/{path.name}", path.read_bytes()))
    folder = template if template.is_dir() else template.parent
    if named := sorted(sensitive & set(bundle.file_inputs(project.variables, folder))):
        raise FactoryError(f"variable {named[0]!r} is sensitive and names a local file: factory does not store its "
                           "content in the queue", hint=f"put the file on the workers and pass its path there "
                           f"(-var {named[0]}=/path/on/the/workers, a path that does not exist here), or make the "
                           "variable non-sensitive if the file is not a secret")
    if not found:
        return split
    public = db.queue_key(url)
    if public is None:
        what = ", ".join(f"{w} {n}" for w, n, _ in found)
        raise FactoryError(f"{what}: a secret, and the queue has no key to seal secrets with; factory never stores "
                           "them in the queue database in clear text",
                           hint="run `factory queue key /etc/factory/queue.key` once and install that file on the "
                           f"workers ({seal.KEY_ENV}), or give the workers the value themselves (PKR_VAR_NAME in "
                           "their environment) and leave it out of the submit (a PKR_VAR_NAME set here is used to "
                           "validate and is not sent)")
    for what, name, plain in found:
        token = seal.seal(public, f"{what}:{name}", plain)
        if what == "var":
            split.secret_vars.append({"name": name, "value": token})
        elif what == "file":
            split.auto_files[template / name.removeprefix("template/")] = {"path": name, "sealed": token}
        else:
            split.var_files[var_files[int(name.split("-", 1)[0])]] = {"name": name, "sealed": token}
    return split


def _waiting_job(url: str, lock: str) -> int:
    with db.connection(url) as conn:
        row = conn.execute("SELECT id FROM procrastinate_jobs WHERE queueing_lock = %s AND status = 'todo' "
                           "ORDER BY id LIMIT 1", (lock,)).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
