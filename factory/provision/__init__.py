"""Provisioners: shell, file, shell-local, breakpoint, ansible and ansible-local, dispatched by type through a registry.

The step runner calls `run_with_meta(spec, comm, ctx)`, which applies the meta-arguments (pause_before,
max_retries, timeout) around `run(spec.type, config, comm, ctx)`.
"""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING, Any

from factory.errors import FactoryError
from factory.provision import (  # noqa: F401  (they register themselves)
    ansible,
    ansible_local,
    breakpoint,
    file,
    shell,
    shell_local,
)
from factory.provision.base import ProvisionContext, Provisioner, ProvisionerType

if TYPE_CHECKING:
    from factory.comm.ssh import Communicator
    from factory.template.model import ProvisionerSpec

__all__ = ["ProvisionContext", "Provisioner", "ProvisionerType", "run", "run_with_meta"]

RETRY_DELAY = 1.0


def run(spec_type: str, config: Any, comm: Communicator | None, ctx: ProvisionContext) -> None:
    """Run one provisioner of type spec_type with its (validated) config."""
    impl = Provisioner.for_type(spec_type)
    if impl is None:
        raise FactoryError(f"provisioner {spec_type!r} is not implemented by factory",
                           hint="implemented: " + ", ".join(Provisioner.implemented()))
    if impl.needs_communicator and comm is None:
        raise FactoryError(f"the {spec_type} provisioner needs SSH but this build has no communicator",
                           hint='set communicator = "ssh" (the default) on the source')
    impl().provision(config, comm, ctx)


def run_with_meta(spec: ProvisionerSpec, comm: Communicator | None, ctx: ProvisionContext) -> None:
    """run() with Packer's meta-arguments: pause_before, then up to 1 + max_retries attempts under timeout."""
    full_name = f"{ctx.source_type}.{ctx.source_name}"
    config = spec.config_for(full_name)
    label = spec.name or spec.type
    if spec.pause_before > 0:
        ctx.emit(f"Pausing {spec.pause_before:g}s before the next provisioner...")
        time.sleep(spec.pause_before)
    attempts = 1 + max(0, spec.max_retries)
    for attempt in range(1, attempts + 1):
        deadline = time.monotonic() + spec.timeout if spec.timeout else None
        try:
            run(spec.type, config, comm, dataclasses.replace(ctx, deadline=deadline))
            return
        except FactoryError as exc:
            if attempt == attempts:
                if attempts > 1:
                    raise FactoryError(f"{exc.message} (after {attempts} attempts)", hint=exc.hint,
                                       where=exc.where or spec.where) from exc
                raise FactoryError(exc.message, hint=exc.hint, where=exc.where or spec.where) from exc
            ctx.emit(f"Provisioner {label} failed: {exc.message}; retrying ({attempt}/{spec.max_retries})")
            time.sleep(RETRY_DELAY)
