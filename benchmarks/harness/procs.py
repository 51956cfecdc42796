"""Starting, reaching and stopping the processes of a run, all on 127.0.0.1."""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from harness.base import HOST, ROOT


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def child_setup() -> None:
    """In every child before exec: the hard file limit, and die with this process."""
    raise_nofile()
    with contextlib.suppress(Exception):
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class Started:
    name: str
    proc: subprocess.Popen
    log: Path | None = None


@dataclass
class Procs:
    started: list[Started] = field(default_factory=list)

    def spawn(
        self, name: str, argv: list[str], log: Path | None, cpus: set[int] | None = None, **kw
    ) -> subprocess.Popen:
        out = open(log, "wb") if log else None  # noqa: SIM115 (closed with the process)

        def setup() -> None:
            child_setup()
            if cpus:
                os.sched_setaffinity(0, cpus)

        try:
            proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                stdout=kw.pop("stdout", out),
                stderr=out if out else None,
                start_new_session=True,  # own process group: Ctrl-C reaches only us
                preexec_fn=setup,
                **kw,
            )
        finally:
            if out:
                out.close()
        self.started.append(Started(name, proc, log))
        return proc

    def stop_all(self, grace: float = 8.0) -> None:
        """SIGTERM every process group started here, then SIGKILL what is left."""
        for s in reversed(self.started):
            if s.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(s.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for s in reversed(self.started):
            remaining = max(deadline - time.monotonic(), 0.05)
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.proc.wait(remaining)
        for s in self.started:
            # The group too: a worker may outlive its master.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(s.proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                s.proc.wait(2)

    def print_log_tails(self, lines: int = 15) -> None:
        for s in self.started:
            if s.log and s.log.exists():
                tail = s.log.read_text(errors="replace").splitlines()[-lines:]
                if tail:
                    print(f"--- last lines of {s.log.name} ---\n" + "\n".join(tail))


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {HOST}:{port} after {timeout:.0f}s")


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    assert url.startswith(f"http://{HOST}:")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
