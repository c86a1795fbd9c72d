"""Which queue a template's job goes to, and which queues a worker's host can serve.

Queues name what a build needs from its host: `kvm` (a qemu source with accelerator = "kvm"), `tcg` (any other
qemu source: every QEMU host can run it, and a KVM host runs `auto` with KVM), `libvirt`, `virtualbox`, and
`any` for sources that start no machine (`null`), which every worker serves. A worker serves only the queues its
probe confirms, so it never takes a job it cannot run.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from factory.errors import FactoryError

QUEUES = ("kvm", "tcg", "libvirt", "virtualbox")
ANY = "any"
VIRTUALBOX_TYPES = ("virtualbox-iso", "virtualbox-ovf", "virtualbox-vm")
LIBVIRT_URI_ENV = "FACTORY_LIBVIRT_URI"


def queue_for_source(source: Any) -> str:
    """The queue one source of a build needs."""
    if source.type == "null":
        return ANY
    if source.type == "qemu":
        accel = str(getattr(source.config, "accelerator", "") or "auto").lower()
        return "kvm" if accel == "kvm" else "tcg"
    if source.type == "libvirt":
        return "libvirt"
    if source.type in VIRTUALBOX_TYPES:
        return "virtualbox"
    raise FactoryError(f"no worker builds source type {source.type!r}", where=getattr(source, "where", None),
                       hint="queued builds support qemu, libvirt, virtualbox and null sources")


def queue_for(builds: list[Any]) -> str:
    """The one queue every selected source of a template can run on (kvm covers tcg)."""
    needs = {queue_for_source(s) for b in builds for s in b.sources} - {ANY}
    if needs == {"kvm", "tcg"}:
        needs = {"kvm"}
    if len(needs) > 1:
        raise FactoryError("the selected sources need different kinds of host: " + ", ".join(sorted(needs)),
                           hint="submit them separately with -only (one job per kind of host)")
    return needs.pop() if needs else ANY


def _probe(queue: str) -> tuple[bool, str]:
    """Can this host serve queue? (yes/no, why)."""
    if queue in ("kvm", "tcg") and not shutil.which("qemu-system-x86_64"):
        return False, "qemu-system-x86_64 is not installed"
    if queue == "tcg":
        return True, "QEMU is installed"
    if queue == "kvm":
        from factory.machine import accel

        verdict = accel.resolve("auto", announce=False)  # the real probe: a kernel boots under KVM (cached)
        return verdict.accel is accel.Accel.KVM, verdict.reason
    if queue == "libvirt":
        return _libvirt_reachable(os.environ.get(LIBVIRT_URI_ENV) or "qemu:///system")
    if queue == "virtualbox":
        found = shutil.which("VBoxManage")
        return bool(found), f"VBoxManage at {found}" if found else "VBoxManage is not on PATH"
    return False, f"unknown queue {queue!r}"


def _libvirt_reachable(uri: str) -> tuple[bool, str]:
    try:
        import libvirt

        conn = libvirt.openReadOnly(uri)
    except Exception as exc:
        return False, f"libvirt {uri} does not answer: {str(exc).strip()}"
    conn.close()
    return True, f"libvirt {uri} answers"


def host_queues(requested: str) -> tuple[list[str], list[str]]:
    """The queues this worker serves and why: `auto` probes each kind; an explicit list must pass its probes."""
    names = QUEUES if requested.strip() in ("", "auto") else tuple(
        q.strip() for q in requested.split(",") if q.strip())
    unknown = [q for q in names if q not in (*QUEUES, ANY)]
    if unknown:
        raise FactoryError(f"unknown queue(s): {', '.join(unknown)}", hint="auto, or some of: " + ",".join(QUEUES))
    served, notes = [], []
    for name in names:
        if name == ANY:
            continue
        ok, why = _probe(name)
        notes.append(f"{name}: {'yes' if ok else 'no'} ({why})")
        if ok:
            served.append(name)
        elif requested.strip() not in ("", "auto"):
            raise FactoryError(f"this host cannot serve the {name} queue: {why}",
                               hint="leave it out of --queues, or use --queues auto")
    return [*served, ANY], notes
