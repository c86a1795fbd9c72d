"""Real public Packer templates validate: tests/corpus holds templates of well-known projects (var files and
script stubs as needed) and invocations.tsv the commands their Makefiles/CI run; >= 95 % must validate."""

from __future__ import annotations

import importlib.util
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# tests/corpus/run.py is also a script (it prints the figures); loaded by path under a name of its own.
_spec = importlib.util.spec_from_file_location("corpus_run", Path(__file__).parent / "corpus" / "run.py")
assert _spec is not None and _spec.loader is not None
corpus = importlib.util.module_from_spec(_spec)
sys.modules["corpus_run"] = corpus
_spec.loader.exec_module(corpus)


def test_corpus_pass_rate_is_at_least_95_percent() -> None:
    invocations = corpus.invocations()
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(corpus.run, invocations))
    failures = [f"{r.invocation.directory}: {' '.join(r.invocation.args)}\n{r.output[-600:]}"
                for r in results if not r.ok]
    passed, total = corpus.rate(results)
    assert len({inv.repository for inv in invocations}) >= 2 and total >= 3
    assert passed / total >= 0.95, "\n\n".join(failures)
