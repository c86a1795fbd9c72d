"""Option declarations of every builder (source), provisioner, post-processor and data source factory knows.

One module per family; each class here is the single declaration that validation, `factory inspect`, the
reference page (docs/reference.md) and cache keys read. Implementations live in the pipeline packages
(machine/, provision/, artifact/, post/) and take these frozen dataclasses as their config.
"""

from __future__ import annotations

import importlib
import pkgutil

from factory.options import REGISTRY, Component, Kind

_loaded = False


def _load_declarations() -> None:
    """Import every module of this package, so the registry is complete before it is read."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{mod.name}")


def lookup(kind: Kind, name: str) -> type[Component] | None:
    """The declaration of component (kind, name), e.g. (Kind.SOURCE, "qemu")."""
    _load_declarations()
    return REGISTRY.get((kind, name))


def registered(kind: Kind) -> dict[str, type[Component]]:
    _load_declarations()
    return {name: cls for (k, name), cls in sorted(REGISTRY.items()) if k == kind}
