"""boot_command / boot_steps read when the template is: the key syntax is checked where the user wrote it.

A `<name>` that is no key is typed literally by Packer (and by factory's drivers), which is rarely what was
meant (`<entr>`, `<wait 5>`): a warning at the option's line, with the nearest key name. A character no US
keyboard key types is an error, the one build would raise before the VM starts. Placeholders (`{{ .HTTPIP }}`)
are masked first (the one placeholder syntax, factory.placeholders): the build expands them, and checks
their names, with the real values.
"""

from __future__ import annotations

from factory.errors import FactoryError, Location
from factory.machine import keys
from factory.options import Component, suggest
from factory.placeholders import PLACEHOLDER
from factory.schema.common import BootOptions
from factory.template.collect import Collector


def check_boot_keys(config: Component, where: dict[str, Location], fallback: Location, path: str,
                    col: Collector) -> None:
    """Warn about every unknown `<key>` and report every untypable character of boot_command / boot_steps."""
    if not isinstance(config, BootOptions) or not (config.boot_command or config.boot_steps):
        return
    option = "boot_steps" if config.boot_steps else "boot_command"
    texts = [step.keys for step in config.boot_steps] or list(config.boot_command)
    at = where.get(option, fallback)
    names = {n.lower(): n for n in keys.key_names()}
    for i, text in enumerate(texts):
        # Same length, so columns still point into what the user wrote.
        plain = PLACEHOLDER.sub(lambda m: "0" * len(m.group(0)), text)
        for column, name in keys.unknown_keys(plain):
            near = suggest(name.lower(), names)
            advice = ("a wait is written <wait>, <wait5> or <wait1m30s> (no space)" if name.lower().startswith("wait")
                      else f"did you mean <{names[near]}>?" if near else
                      "keys are <enter> <esc> <tab> <f1>..<f12> <waitN> <leftCtrlOn> ... (see boot_command in "
                      "docs/reference.md); write < and > apart if you mean the text")
            col.warn(f"{at.file}:{at.line}: {path}.{option}[{i}]: <{name}> at column {column} is no key, so it is "
                     f"typed literally (as Packer does); {advice}")
        for column, ch in keys.untypable(plain):
            col.add(FactoryError(f"{option}[{i}]: character {ch!r} at column {column} cannot be typed on a US "
                                 "keyboard", where=at, hint="type it with its key sequence, or put it in the "
                                 "preseed/kickstart file served over HTTP instead"))
