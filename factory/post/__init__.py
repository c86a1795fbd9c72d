"""Post-processors with Packer's names and chaining semantics.

    from factory.post import PostContext, run_chains
    artifacts = run_chains(build.post_processors, artifact, PostContext("debian", "qemu", "cloud", run_uuid))

Each implementation registers under its template type name (factory/post/*.py); its options are declared in
factory/schema/post_processors.py and factory/schema/exports.py.
"""

from factory.post import (  # noqa: F401  (register implementations)
    checksum,
    cloud,
    compress,
    export,
    local,
    manifest,
    vagrant_cloud,
    vagrant_registry,
)
from factory.post.base import PostContext, PostProcessor, Result
from factory.post.chain import run_chains

__all__ = ["PostContext", "PostProcessor", "Result", "run_chains"]
