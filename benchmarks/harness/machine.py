"""What the machine and each process spent, read from /proc, and waiting for quiet."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from harness.base import CLK_TCK, log

QUIET_PCT = 15.0  # machine busy % under which the start counts as quiet


def proc_stat(pid: int) -> tuple[int, int] | None:
    """(ppid, utime+stime ticks) of a process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # after the comm: state(3) ppid(4) ... utime(14) stime(15)
    return int(fields[1]), int(fields[11]) + int(fields[12])


def cpu_ticks(pid: int) -> int:
    stat = proc_stat(pid)
    return stat[1] if stat else 0


def children(pid: int) -> list[int]:
    try:
        return sorted(int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                stat = proc_stat(int(entry.name))
                if stat and stat[0] == pid:
                    found.append(int(entry.name))
        return sorted(found)


def pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def machine_ticks() -> tuple[int, int, int]:
    """(busy, total, kernel-side) jiffies of all CPUs from /proc/stat; kernel-side is
    irq + softirq + steal, time no process is charged for (loopback TCP is softirq)."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    parts += [0] * (8 - len(parts))
    idle = parts[3] + parts[4]  # idle + iowait
    total = sum(parts[:8])  # guest time is already in user
    return total - idle, total, parts[5] + parts[6] + parts[7]


def busy_pct(before: tuple[int, ...], after: tuple[int, ...]) -> float:
    """% of the machine busy between two (busy, total, ...) readings of machine_ticks."""
    return 100.0 * (after[0] - before[0]) / max(after[1] - before[1], 1)


def busy_over(seconds: float) -> float:
    before = machine_ticks()
    time.sleep(seconds)
    return busy_pct(before, machine_ticks())


def service_pids() -> list[int]:
    """PostgreSQL (postmaster and backends) and Redis that with-services.sh started."""
    pids: list[int] = []
    work = os.environ.get("PUREBRIDGE_TEST_SERVICES_DIR")
    if work:
        with contextlib.suppress(OSError, ValueError, IndexError):
            master = int((Path(work) / "pg" / "postmaster.pid").read_text().split()[0])
            pids += [master, *children(master)]
    port = os.environ.get("PUREBRIDGE_TEST_REDIS_PORT")
    if port:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (entry / "cmdline").read_bytes()
                if cmdline.startswith(b"redis-server") and f":{port}".encode() in cmdline:
                    pids.append(int(entry.name))
    return pids


def wait_for_quiet(wait_idle: float) -> None:
    """Warn when other work keeps the machine busy; with --wait-idle, wait for it
    (at most that many seconds). Called before the start and, with --wait-idle,
    before a disturbed pair of phases is measured again: the processes started
    here are idle then, so what keeps the machine busy is someone else."""
    deadline = time.monotonic() + wait_idle
    while True:
        busy = busy_over(1.0)
        if busy <= QUIET_PCT:
            return
        if time.monotonic() >= deadline:
            log(
                f"WARNING: other work keeps the machine {busy:.0f}% busy; results will be "
                "disturbed (--wait-idle SECONDS waits for quiet)"
            )
            return
        log(f"machine {busy:.0f}% busy with other work; waiting for it to settle")
        time.sleep(2.0)


def wait_for_calm(most_s: float = 5.0) -> None:
    """Before a phase: wait (at most `most_s`) until what the last one left
    behind (the usage writer's last batches, PostgreSQL writing them out)
    has stopped, so that no phase pays for the one before it."""
    deadline = time.monotonic() + most_s
    while time.monotonic() < deadline:
        if busy_over(0.3) <= QUIET_PCT:
            return


class CpuWindow:
    """CPU used by groups of processes, and by the whole machine, between start()
    and stop(). A group is a function giving its pids, asked at both ends (a
    process that appears in between counts from zero). `other` is what the
    machine spent outside every group: another job running on this machine."""

    def __init__(self, groups: dict[str, Callable[[], list[int]]]) -> None:
        self.groups = groups
        self.before: dict[str, dict[int, int]] = {}
        self.machine: tuple[int, int, int] = (0, 0, 0)
        self.started = 0.0

    def start(self) -> None:
        self.before = {k: {p: cpu_ticks(p) for p in f()} for k, f in self.groups.items()}
        self.machine = machine_ticks()
        self.started = time.monotonic()

    def stop(self) -> dict:
        now = machine_ticks()
        wall = time.monotonic() - self.started
        machine_ms = wall * 1000 * (os.cpu_count() or 1)
        out: dict = {"wall_s": wall, "machine_busy_pct": busy_pct(self.machine, now)}
        tracked = 0.0
        for name, fn in self.groups.items():
            before = self.before[name]
            pids = set(before) | set(fn())
            # A process gone by now (0 ticks) counts nothing rather than minus its past.
            per = {
                p: max(cpu_ticks(p) - before.get(p, 0), 0) * 1000 / CLK_TCK for p in sorted(pids)
            }
            out[name] = {"cpu_ms": sum(per.values()), "per_pid_cpu_ms": per}
            tracked += out[name]["cpu_ms"]
        busy_ms = (now[0] - self.machine[0]) * 1000 / CLK_TCK
        kernel_ms = (now[2] - self.machine[2]) * 1000 / CLK_TCK
        other_ms = max(busy_ms - tracked - kernel_ms, 0.0)
        for name, ms in (("irq_softirq_steal", kernel_ms), ("other", other_ms)):
            out[name] = {"cpu_ms": ms, "pct_of_machine": 100.0 * ms / max(machine_ms, 1.0)}
        return out
