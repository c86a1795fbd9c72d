"""The content-addressed store: atomic entries, LRU order, locks across processes, `factory cache ls/gc`."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from factory.store import Store, parse_size


def _key(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _put(store: Store, name: str, size: int, kind: str = "iso", used: float | None = None) -> str:
    key = _key(name)
    with store.put(key, kind, name) as tmp:
        tmp.write_bytes(b"x" * size)
    if used is not None:  # an older last use, as if the entry had sat unused since then
        meta = store.folder(key) / "entry.json"
        meta.write_text(json.dumps(json.loads(meta.read_text()) | {"last_used": used}))
    return key


def _cli(*args: str, cache: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"FACTORY_CACHE_DIR": str(cache)}
    return subprocess.run([sys.executable, "-m", "factory", *args], capture_output=True, text=True, env=env)


def test_put_is_atomic_and_get_updates_the_last_use(tmp_path: Path) -> None:
    store = Store(tmp_path)
    key = _key("a")
    with pytest.raises(RuntimeError), store.put(key, "seed", "a.iso") as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert store.get(key) is None and not list((tmp_path / "entries").iterdir())
    key = _put(store, "a.iso", 10, "seed", used=1000.0)
    path = store.get(key)
    assert path is not None and path.name == "a.iso" and path.read_bytes() == b"x" * 10
    (entry,) = store.entries()
    assert entry.kind == "seed" and entry.size == 10 and entry.last_used > time.time() - 60
    assert store.key_of(path) == key and store.key_of(tmp_path) is None


def test_an_entry_edited_in_place_is_not_served(tmp_path: Path) -> None:
    store = Store(tmp_path)
    key = _put(store, "b.iso", 100)
    path = store.get(key)
    assert path is not None
    with path.open("ab") as fh:
        fh.write(b"tampered")
    assert store.get(key) is None


def test_gc_removes_least_recently_used_first_and_never_an_entry_in_use(tmp_path: Path) -> None:
    store = Store(tmp_path)
    old = _put(store, "old.iso", 1000, used=100.0)
    held = _put(store, "held.iso", 1000, used=200.0)
    new = _put(store, "new.iso", 1000)
    # Another process holds `held` (a running build reading it).
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys; from pathlib import Path; from factory.store import Store\n"
        f"with Store(Path({str(tmp_path)!r})).hold({held!r}):\n"
        "    print('holding', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": os.getcwd()})
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        removed, busy = store.gc(2000)  # the oldest alone is enough
        assert [e.key for e in removed] == [old] and not busy
        removed, busy = store.gc(1000)  # the held one is passed over, so the newer one goes
        assert [e.key for e in removed] == [new] and [e.key for e in busy] == [held]
        assert [e.key for e in store.entries()] == [held]
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    removed, busy = store.gc(0)
    assert [e.key for e in removed] == [held] and not busy


def test_cache_ls_and_gc_commands(tmp_path: Path) -> None:
    store = Store(tmp_path / "store")
    _put(store, "debian.iso", 3 << 20, used=time.time() - 7200)
    keep = _put(store, "cd.iso", 1 << 20, kind="seed")
    listing = json.loads(_cli("cache", "ls", "--json", cache=tmp_path).stdout)
    assert [(e["name"], e["kind"], e["size"]) for e in listing["entries"]] == [
        ("debian.iso", "iso", 3 << 20), ("cd.iso", "seed", 1 << 20)]
    assert listing["total"] == 4 << 20
    text = _cli("cache", "ls", cache=tmp_path).stdout
    assert "debian.iso" in text and "3.0 MiB" in text and " 2h " in text and "2 entries, 4.0 MiB" in text
    done = _cli("cache", "gc", "--max-size", "2M", cache=tmp_path)
    assert done.returncode == 0 and "removed iso debian.iso" in done.stderr
    assert [e.key for e in store.entries()] == [keep]
    bad = _cli("cache", "gc", "--max-size", "lots", cache=tmp_path)
    assert bad.returncode == 1 and "invalid size 'lots'" in bad.stderr


@pytest.mark.parametrize("args", [("cache", "ls"), ("cache", "gc", "--max-size", "0"),
                                  ("iso-fetch", "debian-12", "--offline")])
def test_a_cache_dir_that_is_a_file_is_a_user_error(tmp_path: Path, args: tuple[str, ...]) -> None:
    not_a_dir = tmp_path / "cache.txt"
    not_a_dir.write_text("keep")
    res = _cli(*args, cache=not_a_dir)
    assert res.returncode == 1, res.stderr
    assert f"FACTORY_CACHE_DIR={not_a_dir}: cannot create the folder" in res.stderr and "Not a directory" in res.stderr
    assert "hint: point FACTORY_CACHE_DIR at a folder" in res.stderr and "internal error" not in res.stderr
    assert not_a_dir.read_text() == "keep"


def test_parse_size() -> None:
    assert parse_size("0") == 0 and parse_size("512") == 512 and parse_size("2K") == 2048
    assert parse_size("1.5G") == 3 << 29 and parse_size("20GiB") == 20 << 30


def test_seed_isos_are_stored_by_their_files_and_label(tmp_path: Path) -> None:
    from factory.media.seed import make_iso_stored

    files: dict[str, bytes | Path] = {"user-data": b"#cloud-config\n", "meta-data": b"instance-id: a\n"}
    first = make_iso_stored(files, tmp_path / "a.iso", label="cidata")
    second = make_iso_stored(files, tmp_path / "b.iso", label="cidata")
    (entry,) = Store().entries("seed")
    assert first.read_bytes() == second.read_bytes() and os.path.samefile(second, Store().folder(entry.key) / "a.iso")
    make_iso_stored(files | {"meta-data": b"instance-id: b\n"}, tmp_path / "c.iso", label="cidata")
    make_iso_stored(files, tmp_path / "d.iso", label="other")
    assert len(Store().entries("seed")) == 3


def _checkpoint(store: Store, sid: str, step: str, parent: object = None, size: int = 1000) -> None:
    import json as _json

    from factory import checkpoints

    with store.new_entry(sid, checkpoints.KIND, "disk.qcow2") as (tmp, _final):
        (tmp / "disk.qcow2").write_bytes(b"q" * size)
        (tmp / checkpoints.META).write_text(_json.dumps(checkpoints.meta(step, sid, parent)))  # type: ignore[arg-type]


def test_cache_ls_names_checkpoints_and_gc_drops_broken_chains_first(tmp_path: Path) -> None:
    from factory import checkpoints

    store = Store(tmp_path / "store")
    _checkpoint(store, _key("0"), "disk", size=3000)
    _checkpoint(store, _key("1"), "connect", checkpoints.read(store, _key("0")))
    _checkpoint(store, _key("2"), "provision-1", checkpoints.read(store, _key("1")))
    listing = _cli("cache", "ls", cache=tmp_path).stdout
    assert "after connect" in listing and "after provision-1" in listing and "broken" not in listing, listing
    data = json.loads(_cli("cache", "ls", "--json", cache=tmp_path).stdout)
    steps = {e["checkpoint"]["step"]: e["checkpoint"]["usable"] for e in data["entries"]}
    assert steps == {"disk": True, "connect": True, "provision-1": True}
    # A parent replaced under the same key (another layer ID) breaks its children: they are never used again.
    assert store.remove(_key("1"))
    _checkpoint(store, _key("1"), "connect", checkpoints.read(store, _key("0")))
    assert checkpoints.chain(store, _key("2")) is None and checkpoints.chain(store, _key("1")) is not None
    assert "after provision-1 (broken chain: collectable)" in _cli("cache", "ls", cache=tmp_path).stdout
    done = _cli("cache", "gc", "--max-size", "1G", cache=tmp_path)
    assert done.returncode == 0 and "removed checkpoint" in done.stdout + done.stderr
    assert {e.key for e in store.entries()} == {_key("0"), _key("1")}
