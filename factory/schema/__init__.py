"""Option declarations of every builder (source), provisioner, post-processor and data source factory knows.

One module per family; each class here is the single declaration that validation, `factory inspect`, the
reference page (docs/reference.md) and cache keys read. Implementations live in the pipeline packages
(machine/, provision/, artifact/, post/) and take these frozen dataclasses as their config.
"""
