"""Top functions of py-spy `--format raw` (collapsed stacks) files, as text.

    .venv/bin/python benchmarks/pyspy_summary.py FILE.txt [FILE.txt ...] [--top 30]

Several files (one per gunicorn worker) are added together. For each function
(file and name, line numbers merged) it prints:

- self %: samples where it was the innermost frame (where the CPU was);
- total %: samples where it was anywhere on the stack (it or its callees).

Percentages are of the busy samples in the files: py-spy leaves idle threads
out (unless it ran with --idle), and with --native the samples that wait in
epoll, sleep or a lock are dropped here. A thread waiting for the GIL counts as
busy. Thread roots (`--threads`) are kept apart in a per-thread split.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE = re.compile(r":\d+\)$")
# With --native py-spy cannot tell idle threads apart: drop samples that wait.
IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "clock_nanosleep", "nanosleep", "poll", "select")
IDLE_CALLERS = ("PyThread_acquire_lock_timed", "lock_PyThread_acquire_lock", "Condition.wait")


def _frame_key(frame: str) -> str:
    # "handle (gateway/chat.py:57)" -> "handle (gateway/chat.py)"
    return _LINE.sub(")", frame.strip())


def load(paths: list[Path]) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    samples = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_frame_key(f) for f in stack.split(";") if f]
            root = ""
            while frames and frames[0].startswith(("thread ", "process ")):
                root = frames.pop(0)
            if not frames:
                continue
            leaf = frames[-1].split(" (")[0]
            if leaf in IDLE_LEAVES or any(f.split(" (")[0] in IDLE_CALLERS for f in frames):
                continue
            if root:
                threads[root] += count
            samples += count
            self_counts[frames[-1]] += count
            for frame in set(frames):
                total_counts[frame] += count
    return self_counts, total_counts, threads, samples


def report(paths: list[Path], top: int = 30) -> str:
    self_counts, total_counts, threads, samples = load(paths)
    if not samples:
        return "no samples"
    out = [f"{samples} samples from {len(paths)} file(s)"]
    if threads:
        out.append("\nper thread:")
        for name, count in threads.most_common(10):
            out.append(f"  {100 * count / samples:5.1f}%  {name}")
    out.append(f"\ntop {top} by self time:")
    for frame, count in self_counts.most_common(top):
        out.append(f"  {100 * count / samples:5.1f}%  {frame}")
    out.append(f"\ntop {top} by total time (inclusive):")
    for frame, count in total_counts.most_common(top):
        out.append(f"  {100 * count / samples:5.1f}%  {frame}")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    print(report(args.files, args.top))


if __name__ == "__main__":
    main()
