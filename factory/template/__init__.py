"""Packer HCL2 templates: parse, evaluate and decode into a typed Project.

    project = load(Path("templates/"), vars=["version=24.04"], only=["qemu.*"])
    for build in project.builds: ...
"""

from __future__ import annotations

from factory.template.loader import PACKER_VERSION, load
from factory.template.model import Build, PostProcessorSpec, Project, ProvisionerSpec, SourceRef, Variable

__all__ = ["PACKER_VERSION", "Build", "PostProcessorSpec", "Project", "ProvisionerSpec", "SourceRef", "Variable",
           "load"]
