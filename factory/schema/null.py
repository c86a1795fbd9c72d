"""`source "null"`: Packer's null builder. No machine: provisioners run over a communicator to a host that
already exists (`ssh_host`), or with `communicator = "none"` only host-side work runs (shell-local, post-processors).
"""



from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.options import Component, Kind
from factory.schema.common import CommunicatorOptions
from factory.schema.types import Checked, OptionProblem


@dataclass(frozen=True)
class NullSource(CommunicatorOptions, Checked, Component, kind=Kind.SOURCE, name="null"):
    """Packer's null builder: the communicator options only (builder/null/config.go)."""

    summary: ClassVar[str] = ("Makes no machine: runs the provisioners over SSH on an existing host (`ssh_host`), "
                              "or with `communicator = \"none\"` only shell-local provisioners and the "
                              "post-processors. The artifact has no files.")


    def problems(self) -> list[OptionProblem]:
        """Packer's null builder checks: a communicator other than none needs a host, a user and a login."""
        if self.communicator == "none":
            return []
        user, host = ("winrm_username", "winrm_host") if self.communicator == "winrm" else ("ssh_username",
                                                                                             "ssh_host")
        found = []
        if not getattr(self, host):
            found.append(OptionProblem("communicator", f"the null builder needs {host} with communicator = "
                                       f"\"{self.communicator}\"", f"set {host} to the existing machine's "
                                       "address, or communicator = \"none\""))
        if not getattr(self, user):
            found.append(OptionProblem("communicator", f"the null builder needs {user} with communicator = "
                                       f"\"{self.communicator}\"", f"set {user}"))
        if self.communicator == "ssh" and not (self.ssh_password or self.ssh_private_key_file
                                               or self.ssh_agent_auth):
            found.append(OptionProblem("communicator", "the null builder needs one SSH login method: "
                                       "ssh_password, ssh_private_key_file or ssh_agent_auth",
                                       "factory makes no ephemeral key here: there is no machine to give it to"))
        return found
