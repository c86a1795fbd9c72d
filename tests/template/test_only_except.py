"""-only/-except select builds and sources as Packer does (`BUILD.TYPE.NAME` globs, also `TYPE.NAME`), and
-except also names post-processors (by `name`, else type): the chain stops there, as in Packer."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.template import load

DATA = Path(__file__).parent / "data" / "only_except.pkr.hcl"


def _selection(only: list[str], except_: list[str]) -> tuple[list[str], list[list[str]]]:
    (build,) = load(DATA, only=only, except_=except_).builds
    return ([s.full_name for s in build.sources],
            [[p.name or p.type for p in chain] for chain in build.post_processors])


@pytest.mark.parametrize(("only", "except_", "sources", "chains"), [
    ([], [], ["null.a", "null.b"], [["announce"], ["shell-local"]]),
    (["bld.null.b"], [], ["null.b"], [["announce"], ["shell-local"]]),
    (["null.b"], [], ["null.b"], [["announce"], ["shell-local"]]),
    (["bld.*"], ["bld.null.a"], ["null.b"], [["announce"], ["shell-local"]]),
    ([], ["announce"], ["null.a", "null.b"], [["shell-local"]]),          # a named post-processor
    ([], ["shell-*"], ["null.a", "null.b"], [["announce"]]),              # an unnamed one, by type (glob)
    ([], ["announce", "null.a"], ["null.b"], [["shell-local"]]),
])
def test_selection(only: list[str], except_: list[str], sources: list[str], chains: list[list[str]]) -> None:
    assert _selection(only, except_) == (sources, chains)


def test_except_stops_a_chain_at_the_excepted_post_processor(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text("""
source "null" "a" { communicator = "none" }
build {
  sources = ["source.null.a"]
  post-processors {
    post-processor "shell-local" { inline = ["echo 1"] }
    post-processor "manifest" { name = "record" }
    post-processor "checksum" {}
  }
}
""")
    (build,) = load(tmp_path / "t.pkr.hcl", except_=["record"]).builds
    assert [[p.type for p in chain] for chain in build.post_processors] == [["shell-local"]]
