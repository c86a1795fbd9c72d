"""What a guest's kernel says about its own health on the serial console: panics, soft lockups, stalls.

A panicked or hung guest looks like a slow one from outside: the build would wait out ssh_timeout (scaled x4
under TCG, so up to hours) and then only say that SSH never answered. The kernel says what happened on its
console, so factory reads it there (SerialFollower feeds every line to a KernelWatch). Each kind of trouble is
told once, as it appears; the build stops waiting once the guest cannot recover:

- a panic ("Kernel panic - not syncing: ..."), at once; QEMU's GUEST_PANICKED event (pvpanic) likewise;
- a soft lockup that lasts: while a CPU stays stuck the kernel's watchdog reports it again every ~30 s with a
  growing "stuck for"; the guest counts as hung once one CPU has been reported HUNG_REPORTS times in a row and
  for HUNG_AFTER seconds or more. A single long stall of an overloaded emulated host (one report, then the CPU
  runs again and the count restarts) is not a hang.

RCU stalls, hung tasks and oopses are told, not acted on: a guest often survives them.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

HUNG_AFTER = 120   # seconds a CPU must be reported stuck (the kernel's own count) ...
HUNG_REPORTS = 3   # ... in this many watchdog reports in a row, before the guest counts as hung
_RIP_WITHIN = 40   # the lines after a lockup report in which its RIP line (where the CPU is stuck) comes

_PANIC = re.compile(r"Kernel panic - not syncing:\s*(.*)")
_LOCKUP = re.compile(r"soft lockup - CPU#(\d+) stuck for (\d+)s! \[(.*?)\]")
_RIP = re.compile(r"\bRIP: [0-9a-f]{4}:([A-Za-z_][\w.]*)\+0x")
_RCU = re.compile(r"rcu: INFO: (rcu_\w+ (?:self-detected stall on CPU|detected stalls on CPUs/tasks))")
_HUNG_TASK = re.compile(r"INFO: (task \S+ blocked for more than \d+ seconds)")
_OOPS = re.compile(r"(BUG: kernel NULL pointer dereference.*|BUG: unable to handle .*|Oops: .*"
                   r"|general protection fault.*\[#\d+\].*)")  # [#n]: the kernel's own, not a process's trap


@dataclass(frozen=True)
class Trouble:
    """One kind of trouble the guest kernel reported: what to tell the user, and whether the guest is lost."""

    kind: str       # "panic", "hang", "soft lockup", "rcu stall", "hung task", "oops"
    message: str
    fatal: bool = False


@dataclass
class _Stuck:
    reports: int
    seconds: int
    task: str
    where: str = ""


class KernelWatch:
    """Reads a guest's console line by line (feed) and keeps what its kernel reported (told, fatal)."""

    def __init__(self) -> None:
        self.told: list[Trouble] = []
        self.fatal: Trouble | None = None
        self._stuck: dict[str, _Stuck] = {}
        self._rip_for: tuple[str, int] | None = None   # (cpu, lines left) while a lockup report's RIP is due
        self._lock = threading.Lock()

    def feed(self, line: str) -> Trouble | None:
        """The trouble this console line reports when it is news to tell (first of its kind, or fatal)."""
        with self._lock:
            trouble = self._read(line)
            if trouble is None or self.fatal is not None:
                return None
            if trouble.fatal:
                self.fatal = trouble
            elif any(t.kind == trouble.kind for t in self.told):
                return None
            self.told.append(trouble)
            return trouble

    def panicked(self, detail: str) -> Trouble | None:
        """The hypervisor saw the guest panic (QEMU's GUEST_PANICKED): the same as the console saying so."""
        return self.feed(f"Kernel panic - not syncing: {detail or 'reported by the pvpanic device'}")

    def _read(self, line: str) -> Trouble | None:
        if self._rip_for is not None:
            cpu, left = self._rip_for
            if (rip := _RIP.search(line)) is not None:
                self._stuck[cpu].where, self._rip_for = rip.group(1), None
            else:
                self._rip_for = (cpu, left - 1) if left > 1 else None
        if (m := _PANIC.search(line)) is not None:
            return Trouble("panic", f"the guest kernel panicked: {m.group(1).strip() or '(no reason given)'}",
                           fatal=True)
        if (m := _LOCKUP.search(line)) is not None:
            return self._lockup(m.group(1), int(m.group(2)), m.group(3))
        if (m := _RCU.search(line)) is not None:
            return Trouble("rcu stall", f"the guest kernel reports an RCU stall ({m.group(1)}): a CPU made no "
                           "progress for ~20 s (a hang, or a host too loaded for the emulated guest)")
        if (m := _HUNG_TASK.search(line)) is not None:
            return Trouble("hung task", f"the guest kernel reports a {m.group(1)} (stuck I/O or a deadlock)")
        if (m := _OOPS.search(line)) is not None:
            return Trouble("oops", f"the guest kernel reports an error: {m.group(1).strip()}")
        return None

    def _lockup(self, cpu: str, seconds: int, task: str) -> Trouble:
        last = self._stuck.get(cpu)
        if last is not None and seconds > last.seconds:
            last.reports, last.seconds, last.task = last.reports + 1, seconds, task
        else:  # the first report, or a new stall after the CPU ran again (the count restarted)
            last = self._stuck[cpu] = _Stuck(1, seconds, task)
        self._rip_for = (cpu, _RIP_WITHIN)
        if last.reports >= HUNG_REPORTS and seconds >= HUNG_AFTER:
            where = f" in {last.where}" if last.where else ""
            return Trouble("hang", f"the guest kernel hung: CPU#{cpu} stuck for {seconds}s{where} [{task}], "
                           f"reported {last.reports} times by its watchdog", fatal=True)
        return Trouble("soft lockup", f"the guest kernel reports a soft lockup: CPU#{cpu} stuck for {seconds}s "
                       f"[{task}]; the build stops if it lasts ({HUNG_AFTER}s over {HUNG_REPORTS} reports)")
