"""The shared foundation: one subprocess helper, one user-error path, atomic outputs, secret masking."""

from __future__ import annotations

import fcntl
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from factory import __version__, secrets
from factory.errors import FactoryError, Location
from factory.fsutil import atomic_path, read_part, try_lock
from factory.run import run


def factory_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "factory", *args], capture_output=True, text=True)


def test_run_failure_quotes_command_exit_code_and_stderr_tail() -> None:
    with pytest.raises(FactoryError) as exc:
        run(["sh", "-c", "echo first; echo 'boom here' >&2; exit 3"])
    msg = exc.value.message
    assert "exit code 3" in msg and "sh -c" in msg and "boom here" in msg


def test_run_missing_tool_names_the_package() -> None:
    with pytest.raises(FactoryError) as exc:
        run(["qemu-img-does-not-exist"])
    assert "not found" in exc.value.message and exc.value.hint


def test_run_streams_lines_and_masks_secrets() -> None:
    secrets.register("hunter2-password")
    seen: list[str] = []
    run(["sh", "-c", "echo one; echo pass=hunter2-password"], on_line=seen.append)
    assert seen == ["one", f"pass={secrets.MASK}"]


def test_a_letters_only_password_masks_as_a_word_not_inside_paths_and_names() -> None:
    secrets.register("vagrant")
    secrets.register("s3cr3t-token")
    shown = secrets.mask("echo 'vagrant' | sudo -S halt; sshpass -p vagrant; password=vagrant. "
                         "/home/vagrant utm-vagrant vagrant.box vagrant_user x/s3cr3t-token/y")
    assert shown == ("echo '<sensitive>' | sudo -S halt; sshpass -p <sensitive>; password=<sensitive>. "
                     "/home/vagrant utm-vagrant vagrant.box vagrant_user x/<sensitive>/y")
    secrets.clear()


def test_error_render_names_place_line_and_hint() -> None:
    err = FactoryError("unknown option 'cpu'", hint="did you mean 'cpus'?",
                       where=Location("a.pkr.hcl", 3, 5, "source.qemu.x", "    cpu = 2"))
    text = err.render()
    assert text.splitlines()[0] == "a.pkr.hcl:3:5 (source.qemu.x): unknown option 'cpu'"
    assert "    ^" in text and "hint: did you mean 'cpus'?" in text


def test_atomic_path_leaves_nothing_on_failure(tmp_path: Path) -> None:
    final = tmp_path / "out.img"
    with pytest.raises(RuntimeError), atomic_path(final) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"whole")
    assert final.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [final]


def test_atomic_path_never_replaces_what_is_not_a_regular_file(tmp_path: Path) -> None:
    """Its rename would turn a FIFO (or /dev/null, for root) into a regular file, and fail on a folder only after
    the whole output was written: both are refused before anything is written."""
    fifo, folder = tmp_path / "pipe", tmp_path / "dir"
    os.mkfifo(fifo)
    folder.mkdir()
    for target in (fifo, folder):
        with pytest.raises(FactoryError, match="is not a regular file"), atomic_path(target) as tmp:
            tmp.write_bytes(b"never")
    assert fifo.is_fifo() and folder.is_dir() and sorted(p.name for p in tmp_path.iterdir()) == ["dir", "pipe"]


@pytest.mark.parametrize(("umask", "private", "mode"), [(0o022, False, 0o644), (0o027, False, 0o640),
                                                      (0o022, True, 0o600)])
def test_atomic_path_gives_a_new_files_mode_or_keeps_it_private(tmp_path: Path, umask: int, private: bool,
                                                                mode: int) -> None:
    """An output gets the mode open() would give it (mkstemp's 0600 made ISOs, docs and upgraded templates
    unreadable to the other users of a shared host), or 0600 when it holds a credential. Checked in a child
    process: the umask is the whole process's."""
    code = ("import os, sys; from factory.fsutil import atomic_path\n"
            "os.umask(int(sys.argv[2], 8))\n"
            "with atomic_path(sys.argv[1], private=sys.argv[3] == '1') as tmp: tmp.write_text('x')")
    out = tmp_path / "out.txt"
    subprocess.run([sys.executable, "-c", code, str(out), oct(umask)[2:], "1" if private else "0"], check=True)
    assert stat.S_IMODE(out.stat().st_mode) == mode and out.read_text() == "x"


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_hcl2_upgrade_output_follows_the_umask(tmp_path: Path, umask: int) -> None:
    legacy = tmp_path / "t.json"
    legacy.write_text('{"builders": [{"type": "null", "communicator": "none"}]}')
    proc = subprocess.run(["sh", "-c", f"umask {oct(umask)[2:]} && exec \"$@\"", "sh", sys.executable, "-m", "factory",
                           "hcl2_upgrade", str(legacy)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((tmp_path / "t.json.pkr.hcl").stat().st_mode) == 0o666 & ~umask


def test_try_lock_is_exclusive_across_processes(tmp_path: Path) -> None:
    lock = tmp_path / "port.lock"
    fd = try_lock(lock)
    assert fd is not None
    # One's own lock file is opened read-write: on NFS, flock is emulated with byte-range locks, which need it.
    assert fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDWR
    code = "import sys; from factory.fsutil import try_lock; sys.exit(0 if try_lock(sys.argv[1]) is None else 1)"
    assert subprocess.run([sys.executable, "-c", code, str(lock)]).returncode == 0


def test_cli_usage_error_has_no_traceback() -> None:
    proc = factory_cli("no-such-command")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and "No such command" in proc.stderr


@pytest.mark.parametrize("argv, expect", [
    (["build", "no-such.pkr.hcl"], "no-such.pkr.hcl"),              # its own module: only that one is imported
    (["validate", "no-such.pkr.hcl"], "no-such.pkr.hcl"),           # defined in template.py: all are imported
    (["cache", "ls", "--help"], "Usage: factory cache ls"),        # a group in its own module
    (["jobs", "--help"], "Usage: factory jobs"),                   # a group in queue.py
    (["--debug", "build", "--help"], "Usage: factory build"),
])
def test_each_command_is_found_in_a_fresh_process_whichever_module_defines_it(argv: list[str], expect: str) -> None:
    proc = factory_cli(*argv)
    assert "No such command" not in proc.stderr and "Traceback" not in proc.stderr + proc.stdout
    assert expect in proc.stdout + proc.stderr


def test_packer_single_dash_flags_are_normalized() -> None:
    from factory.cli import normalize_argv

    assert normalize_argv(["build", "-var", "a=b", "-var-file=x.hcl", "-only=qemu.*", "-x"]) == [
        "build", "--var", "a=b", "--var-file=x.hcl", "--only=qemu.*", "-x"]


def test_run_streaming_timeout_kills_the_whole_process_tree(tmp_path: Path) -> None:
    # A child that keeps the pipe open and keeps printing must not outlive the timeout.
    marker = tmp_path / "still-running"
    script = f"(sleep 3; touch {marker}) & while true; do echo tick; sleep 0.1; done"
    seen: list[str] = []
    import time

    start = time.monotonic()
    with pytest.raises(FactoryError) as exc:
        run(["sh", "-c", script], on_line=seen.append, timeout=1)
    assert "timed out" in exc.value.message and time.monotonic() - start < 3
    assert "tick" in seen
    time.sleep(3.5)
    assert not marker.exists(), "the background child survived the timeout"


def test_die_with_parent_kills_the_child_when_its_parent_is_killed(tmp_path: Path) -> None:
    import os
    import signal
    import time

    pidfile = tmp_path / "child.pid"
    parent = (
        "import subprocess, sys, time\n"
        "from factory.run import die_with_parent\n"
        "p = subprocess.Popen(['sleep', '60'], preexec_fn=die_with_parent)\n"
        f"open({str(pidfile)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", parent])
    deadline = time.monotonic() + 20
    while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    child = int(pidfile.read_text())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for _ in range(100):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        # A zombie still answers kill(0); reap-free check via /proc state.
        state = Path(f"/proc/{child}/stat")
        if state.exists() and state.read_text().split()[2] == "Z":
            break
        time.sleep(0.05)
    else:
        pytest.fail("child outlived its SIGKILLed parent")


_ENTRY = """
import atexit, sys, threading, time
from pathlib import Path
out = Path(sys.argv.pop(1))
atexit.register(lambda: out.with_suffix(".atexit").write_text("ran"))
if sys.argv.pop(1) == "thread":  # a non-daemon thread still at work when the command is done
    threading.Thread(target=lambda: (time.sleep(0.5), out.with_suffix(".thread").write_text("done"))).start()
sys.argv[0] = "factory"
from factory.cli import run
run()
"""


@pytest.mark.parametrize("thread", ["none", "thread"])
def test_the_console_entry_leaves_fast_but_flushes_runs_atexit_and_keeps_the_exit_code(
        tmp_path: Path, thread: str) -> None:
    """run() skips the interpreter's teardown (os._exit) once the work is done: what an exit must do still
    happens, and a non-daemon thread still running is waited for."""
    mark = tmp_path / "mark"
    ok = subprocess.run([sys.executable, "-c", _ENTRY, str(mark), thread, "version"], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout) == (0, f"factory {__version__}\n"), ok.stderr
    assert (tmp_path / "mark.atexit").read_text() == "ran"
    assert (tmp_path / "mark.thread").exists() == (thread == "thread")
    (tmp_path / "mark.atexit").unlink()
    bad = subprocess.run([sys.executable, "-c", _ENTRY, str(mark), thread, "validate", str(tmp_path / "no.pkr.hcl")],
                         capture_output=True, text=True)
    assert bad.returncode == 1 and "does not exist" in bad.stderr and "Traceback" not in bad.stderr
    assert (tmp_path / "mark.atexit").read_text() == "ran"
    usage = subprocess.run([sys.executable, "-c", _ENTRY, str(mark), thread, "no-such-command"], capture_output=True,
                           text=True)
    assert usage.returncode == 2 and "No such command" in usage.stderr


def test_read_part_returns_every_byte_or_names_the_file_that_shrank(tmp_path: Path) -> None:
    src = tmp_path / "disk.raw"
    src.write_bytes(bytes(range(256)) * 64)  # 16 KiB
    fd = os.open(src, os.O_RDONLY)
    try:
        assert read_part(fd, src, 4096, 256) == bytes(range(256))
        os.truncate(src, 5000)
        with pytest.raises(FactoryError) as exc:
            read_part(fd, src, 4096, 4096)
        assert exc.value.message == (f"{src} changed while it was read: 904 bytes at offset 4096, 4096 expected "
                                     "(it is 5000 bytes now)")
        assert exc.value.hint
    finally:
        os.close(fd)
