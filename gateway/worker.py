"""This web worker's name, for what it leaves in Redis that outlives it if it
is killed: its journal of requests in flight (gateway/journal.py) and the
leases it holds (gateway/leases.py)."""

from __future__ import annotations

import os
import secrets
import socket

_worker: tuple[int, str] | None = None


def worker_id() -> str:
    """This process's name (made after a fork, not inherited from a parent)."""
    global _worker
    pid = os.getpid()
    if _worker is None or _worker[0] != pid:
        _worker = (pid, f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}")
    return _worker[1]
