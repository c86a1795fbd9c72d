"""Time from sshd accepting connections to factory's first command, against OpenSSH's client as the floor.

Each round starts a fresh sshd (tests/fixtures/sshd.py) while a client is already waiting for it:
  factory: connect() (paramiko, polling every 0.1 s) then run("true");
  floor:   OpenSSH's `ssh -o BatchMode=yes ... true` retried in a tight loop until it succeeds.
Both are timed from the moment sshd accepts connections to the first command completing. Also shown: one
connect+command on an already listening sshd (the handshake cost alone). Target: factory <= 1 s.

    .venv/bin/python bench/bench_ssh.py [--rounds N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fixtures.sshd import SshServer, launch, prepare, running_sshd, stop, wait_listening

from factory.comm.ssh import connect

TARGET = 1.0


def factory_first_command(server: SshServer) -> None:
    with connect(server.settings(timeout=30)) as comm:
        if comm.run("true") != 0:
            raise RuntimeError("factory: `true` failed")


def openssh_argv(server: SshServer, key: Path) -> list[str]:
    return ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=1", "-i", str(key), "-p", str(server.port),
            f"{server.username}@{server.host}", "true"]


def openssh_first_command(server: SshServer, key: Path) -> None:
    argv = openssh_argv(server, key)
    deadline = time.monotonic() + 30
    while subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        if time.monotonic() > deadline:
            raise RuntimeError("openssh: sshd never accepted us")


def cold_round(workdir: Path, client: Callable[[SshServer], None]) -> float:
    """Start the client, then sshd; seconds from sshd accepting connections to the client's first command done."""
    server = prepare(workdir)
    done: dict[str, float | BaseException] = {}

    def waiting_client() -> None:
        try:
            client(server)
            done["at"] = time.monotonic()
        except BaseException as exc:
            done["error"] = exc

    thread = threading.Thread(target=waiting_client)
    thread.start()
    time.sleep(0.6)  # the client is now polling a port nobody listens on
    launch(server)
    try:
        wait_listening(server)  # polls every 20 ms: the moment sshd accepts, within that resolution
        listening = time.monotonic()
        thread.join(30)
    finally:
        stop(server)
    if "error" in done:
        raise RuntimeError(f"client failed: {done['error']}")
    return float(done["at"]) - listening


def warm(server: SshServer, key: Path, rounds: int) -> tuple[float, float]:
    ours, floor = [], []
    for _ in range(rounds):
        t = time.monotonic()
        factory_first_command(server)
        ours.append(time.monotonic() - t)
        t = time.monotonic()
        subprocess.run(openssh_argv(server, key), check=True, stdout=subprocess.DEVNULL)
        floor.append(time.monotonic() - t)
    return statistics.median(ours), statistics.median(floor)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        root = Path(tmp)
        ours, floor = [], []
        for i in range(args.rounds):
            ours.append(cold_round(root / f"f{i}", factory_first_command))
            floor.append(cold_round(root / f"o{i}", lambda s: openssh_first_command(s, s.keypair.write_private(
                s.workdir / "client_key"))))
            print(f"round {i + 1}: factory {ours[-1]:.3f}s   openssh loop {floor[-1]:.3f}s", flush=True)
        with running_sshd(root / "warm") as server:
            key = server.keypair.write_private(server.workdir / "client_key")
            warm_ours, warm_floor = warm(server, key, args.rounds)
    med, med_floor, worst = statistics.median(ours), statistics.median(floor), max(ours)
    print(f"\nsshd listening -> first command (median of {args.rounds}): factory {med:.3f}s, "
          f"OpenSSH tight loop {med_floor:.3f}s, ratio {med / med_floor:.2f}x; worst factory {worst:.3f}s")
    print(f"connect+command on a listening sshd (median): factory {warm_ours:.3f}s, OpenSSH {warm_floor:.3f}s, "
          f"ratio {warm_ours / warm_floor:.2f}x")
    # The median is judged: on a shared machine single rounds spike with the load (shown for context).
    ok = med <= TARGET
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"target: first command <= {TARGET:.1f}s after sshd listens (median): {'met' if ok else 'MISSED'}"
          f"   [load average {load} on {os.cpu_count()} CPUs]")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
