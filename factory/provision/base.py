"""What every provisioner shares: the context it runs in, the registry, and Packer's environment variables."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, Protocol

from factory import ui
from factory.errors import FactoryError

if TYPE_CHECKING:
    from factory.comm.ssh import Communicator


class ProvisionerType(StrEnum):
    SHELL = "shell"
    FILE = "file"
    SHELL_LOCAL = "shell-local"
    BREAKPOINT = "breakpoint"
    ANSIBLE = "ansible"
    ANSIBLE_LOCAL = "ansible-local"


class LocalContext(Protocol):
    """What running something on the host needs; ProvisionContext and the post-processors' context both fit."""

    @property
    def build_name(self) -> str: ...
    @property
    def source_name(self) -> str: ...
    @property
    def source_type(self) -> str: ...
    @property
    def emit(self) -> Callable[[str], None]: ...


@dataclass(frozen=True)
class ProvisionContext:
    """Where a provisioner runs: the build and source it belongs to, and where its output goes.

    emit receives each output line (already masked); the caller prefixes it with the build name.
    extra_env is added to Packer's PACKER_BUILD_NAME / PACKER_BUILDER_TYPE (e.g. PACKER_HTTP_ADDR).
    root resolves relative local paths (scripts, file sources). deadline (time.monotonic) comes from the
    provisioner's `timeout` meta-argument.
    """

    build_name: str
    source_name: str
    source_type: str
    emit: Callable[[str], None] = ui.info
    extra_env: Mapping[str, str] = field(default_factory=dict)
    root: Path = field(default_factory=Path.cwd)
    deadline: float | None = None
    stdin: IO[str] | None = None

    def remaining(self, what: str) -> float | None:
        """Seconds left before the provisioner's timeout, or a timeout error if none are left."""
        if self.deadline is None:
            return None
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise FactoryError(f"provisioner timed out before {what}",
                               hint="raise the provisioner's `timeout`")
        return left

    def local_path(self, path: str) -> Path:
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.root / p


class Provisioner:
    """Base of the implementations; each registers itself with `class X(Provisioner, kind=ProvisionerType.Y)`."""

    kind: ClassVar[ProvisionerType]
    needs_communicator: ClassVar[bool] = True
    _registry: ClassVar[dict[ProvisionerType, type[Provisioner]]] = {}

    def __init_subclass__(cls, kind: ProvisionerType | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if kind is not None:
            cls.kind = kind
            Provisioner._registry[kind] = cls

    def provision(self, config: Any, comm: Communicator | None, ctx: ProvisionContext) -> None:
        raise NotImplementedError

    @classmethod
    def for_type(cls, name: str) -> type[Provisioner] | None:
        try:
            return cls._registry.get(ProvisionerType(name))
        except ValueError:
            return None

    @classmethod
    def implemented(cls) -> list[str]:
        return sorted(cls._registry)


# -- Packer's environment variables -------------------------------------------------------------------------------
DEFAULT_ENV_VAR_FORMAT = "%s='%s' "
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def packer_env(ctx: LocalContext, environment_vars: Sequence[str], env: Mapping[str, str]) -> dict[str, str]:
    """PACKER_BUILD_NAME, PACKER_BUILDER_TYPE, the context's extras, then environment_vars and env (later wins).

    PACKER_BUILD_NAME is the source's name, as in Packer's HCL2 builds.
    """
    out = {"PACKER_BUILD_NAME": ctx.source_name, "PACKER_BUILDER_TYPE": ctx.source_type}
    out.update(getattr(ctx, "extra_env", {}) or {})
    for item in environment_vars:
        key, sep, value = item.partition("=")
        if not sep or not _NAME.match(key):
            raise FactoryError(f"environment_vars entry {item!r} is not KEY=VALUE",
                               hint="write each entry as NAME=value (NAME: letters, digits, _)")
        out[key] = value
    for key, value in env.items():
        if not _NAME.match(key):
            raise FactoryError(f"env key {key!r} is not a valid variable name", hint="use letters, digits and _")
        out[key] = value
    return out


def flatten_env(values: Mapping[str, str], fmt: str | None = None) -> str:
    """Packer's `{{.Vars}}`: each variable through env_var_format (sorted by name), single quotes escaped."""
    fmt = fmt or DEFAULT_ENV_VAR_FORMAT
    try:
        return "".join(fmt % (key, values[key].replace("'", "'\"'\"'")) for key in sorted(values))
    except (TypeError, ValueError) as exc:
        raise FactoryError(f"env_var_format {fmt!r} is not usable: {exc}",
                           hint="it takes two %s: the name and the value, e.g. \"%s='%s' \"") from None


def check_exit(code: int, valid: Sequence[int], what: str) -> None:
    if code in valid:
        return
    shown = "killed by a signal (no exit status)" if code == -1 else f"exited with status {code}"
    hint = "see the output above; if this status is expected, add it to valid_exit_codes"
    if code == 126:
        hint = "status 126 means the script could not be executed: chmod +x it, or run it through a shell " \
               "in execute_command (e.g. \"{{.Vars}} /bin/sh {{.Script}}\")"
    raise FactoryError(f"{what} {shown}; valid exit codes are {list(valid)}", hint=hint)
