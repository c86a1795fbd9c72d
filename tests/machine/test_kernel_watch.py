"""Reading a guest kernel's health from its serial console (factory.machine.kernel_watch, SerialFollower).

tests/data/serial/tcg-guest-softlockup.log is a real console: the README's Debian guest, booted by
bench/bench_packer.py under TCG on 2026-12-07, whose CPU 0 got stuck in virtio-net's receive path while
systemd-networkd came up; it never reached SSH (its lines 600-1000 of 2,875, up to the fifth watchdog report).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.machine.kernel_watch import HUNG_AFTER, HUNG_REPORTS, KernelWatch, Trouble
from factory.machine.serial import SerialFollower

HUNG_LOG = Path(__file__).parent.parent / "data" / "serial" / "tcg-guest-softlockup.log"


def follow(path: Path) -> tuple[SerialFollower, list[Trouble]]:
    told: list[Trouble] = []
    follower = SerialFollower(path, lambda line: None, on_trouble=told.append).start()
    return follower, told


def lockup(cpu: int, seconds: int, at: float = 100.0) -> str:
    return f"[{at:12.6f}] watchdog: BUG: soft lockup - CPU#{cpu} stuck for {seconds}s! [swapper/{cpu}:0]"


def test_a_real_hung_guest_is_told_as_it_stalls_and_declared_hung_once_the_lockup_lasts(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    shutil.copyfile(HUNG_LOG, log)
    follower, told = follow(log)
    try:
        assert follower.caught_up(10)
    finally:
        follower.stop()
    assert [t.kind for t in told] == ["rcu stall", "soft lockup", "hang"]
    assert "rcu_preempt self-detected stall on CPU" in told[0].message and not told[0].fatal
    assert "CPU#0 stuck for 44s [swapper/0:0]" in told[1].message and not told[1].fatal
    # The fourth report (130 s, the first at HUNG_AFTER or more) makes it a hang; where the CPU is stuck comes
    # from the RIP line of the reports before; the fifth report is not news.
    hang = told[2]
    assert hang.fatal and follower.watch.fatal is hang
    assert hang.message == ("the guest kernel hung: CPU#0 stuck for 130s in netif_receive_skb_list_internal "
                            "[swapper/0:0], reported 4 times by its watchdog")
    with pytest.raises(FactoryError) as err:
        follower.check()
    assert err.value.message == hang.message
    assert "serial console log" in (err.value.hint or "") and "cpu_model" in (err.value.hint or "")


def test_one_long_stall_the_cpu_recovers_from_is_not_a_hang() -> None:
    watch = KernelWatch()
    # A loaded host: reports that grow, then the CPU runs again and a later stall restarts the count.
    seen = [watch.feed(lockup(1, s)) for s in (26, 52, 78, 22, 48)]
    assert [t.kind if t else None for t in seen] == ["soft lockup", None, None, None, None]
    assert watch.fatal is None
    # The third report in a row of the new stall, and at 120 s or more: now it is a hang.
    assert watch.feed(lockup(1, 125)) is not None and watch.fatal is not None


def test_a_single_report_of_a_long_stall_is_not_a_hang() -> None:
    watch = KernelWatch()
    watch.feed(lockup(0, 600))  # one report (the vCPU was descheduled for minutes), then nothing more
    assert watch.fatal is None and [t.kind for t in watch.told] == ["soft lockup"]


def test_the_thresholds_are_what_the_module_says() -> None:
    watch = KernelWatch()
    for n in range(1, HUNG_REPORTS):
        watch.feed(lockup(0, HUNG_AFTER + n))
    assert watch.fatal is None
    watch.feed(lockup(0, HUNG_AFTER + HUNG_REPORTS))
    assert watch.fatal is not None and watch.fatal.kind == "hang"
    other = KernelWatch()
    for s in (HUNG_AFTER - 30, HUNG_AFTER - 20, HUNG_AFTER - 1):
        other.feed(lockup(0, s))
    assert other.fatal is None  # reported often enough, but not stuck long enough


def test_a_panic_is_fatal_at_once_with_the_kernels_reason() -> None:
    watch = KernelWatch()
    line = ("[    2.912044] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)")
    trouble = watch.feed(line)
    assert trouble is not None and trouble.fatal and trouble.kind == "panic"
    assert trouble.message == "the guest kernel panicked: VFS: Unable to mount root fs on unknown-block(0,0)"
    # The kernel repeats it in its end marker; nothing after the fatal report is news.
    assert watch.feed("[    2.95] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---") is None
    assert watch.fatal is trouble


def test_pvpanic_counts_as_a_panic() -> None:
    watch = KernelWatch()
    trouble = watch.panicked("")
    assert trouble is not None and trouble.fatal and "pvpanic" in trouble.message


@pytest.mark.parametrize(("line", "kind"), [
    ("[  246.1] INFO: task systemd-journal:185 blocked for more than 120 seconds.", "hung task"),
    ("[   12.0] BUG: kernel NULL pointer dereference, address: 0000000000000008", "oops"),
    ("[   12.0] general protection fault, probably for non-canonical address 0xdead: 0000 [#1] PREEMPT SMP", "oops"),
    ("[   80.0] rcu: INFO: rcu_sched detected stalls on CPUs/tasks:", "rcu stall"),
])
def test_what_a_guest_often_survives_is_told_once_and_never_fatal(line: str, kind: str) -> None:
    watch = KernelWatch()
    first = watch.feed(line)
    assert first is not None and first.kind == kind and not first.fatal
    assert watch.feed(line) is None and watch.fatal is None


def test_ordinary_console_lines_are_no_trouble() -> None:
    watch = KernelWatch()
    for line in ("[    0.314278] NMI watchdog: Perf NMI watchdog permanently disabled",
                 "[  OK  ] Started systemd-networkd.service - Network Configuration.",
                 "rcu: Hierarchical SRCU implementation.", "debian login:", "",
                 "[   50.1] traps: python3[812] general protection fault ip:7f0 sp:7ff error:0 in libc.so.6"):
        assert watch.feed(line) is None
    assert watch.told == [] and watch.fatal is None


def test_the_follower_reads_a_panic_written_after_it_started_and_catches_up_on_demand(tmp_path: Path) -> None:
    log = tmp_path / "serial.log"
    log.write_bytes(b"\x1b[0;32m  OK  \x1b[0m] Reached target basic.target\r\n")
    follower, told = follow(log)
    try:
        follower.check()  # nothing wrong yet
        with open(log, "ab") as fh:
            fh.write(b"[    3.1] Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100\r\n")
        started = time.monotonic()
        assert follower.caught_up(5)
        assert time.monotonic() - started < 2
        with pytest.raises(FactoryError, match="the guest kernel panicked: Attempted to kill init!"):
            follower.check()
    finally:
        follower.stop()
    assert [t.kind for t in told] == ["panic"]
