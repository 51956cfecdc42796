"""The two servers of a run: the fake upstream, and PureBridge under gunicorn."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from pathlib import Path

from harness.base import HOST, PYTHON, ROOT, log
from harness.machine import children
from harness.procs import Procs, http_get, wait_for_port


def start_fake(procs: Procs, port: int, log_path: Path, cpus: set[int] | None) -> subprocess.Popen:
    log(f"fake upstream on {HOST}:{port}")
    argv = [PYTHON, "-m", "tests.fake_upstream", "--host", HOST, "--port", str(port)]
    proc = procs.spawn("fake-upstream", [*argv, "--no-record"], log_path, cpus=cpus)
    wait_for_port(port, proc, 30)
    return proc


def start_gateway(
    procs: Procs,
    *,
    app: str,
    workers: int,
    port: int,
    log_path: Path,
    cpus: set[int] | None,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen, list[int]]:
    """gunicorn with uvicorn workers on HOST:port, once /health answers and every
    worker is up: (the master, its workers). `extra_env`: added to its environment."""
    argv = [str(Path(PYTHON).parent / "gunicorn"), app, "-k", "uvicorn_worker.UvicornWorker"]
    argv += ["-w", str(workers), "--bind", f"{HOST}:{port}", "--backlog", "4096"]
    # Not the shared ~/.gunicorn/gunicorn.ctl: another gunicorn on the machine may hold it.
    argv += ["--graceful-timeout", "5", "--no-control-socket"]
    uses_conf = (ROOT / "gunicorn.conf.py").exists()
    log(
        f"gunicorn -w {workers} on {HOST}:{port}"
        + (" (with gunicorn.conf.py)" if uses_conf else "")
    )
    env = dict(os.environ)
    env.pop("PUREBRIDGE_ACCESS_LOG", None)  # production default: no access log
    env.pop("WEB_CONCURRENCY", None)
    env.pop("PUREBRIDGE_BIND", None)
    env.pop("PUREBRIDGE_METRICS", None)  # production default: off (phases/metrics.py turns it on)
    env.update(extra_env or {})
    master = procs.spawn("gunicorn", argv, log_path, cpus=cpus, env=env)
    _wait_healthy(master, port, workers)
    # Both workers import Django and start their lifespan; give the second a moment.
    time.sleep(1.0)
    pids = children(master.pid)
    status, body = http_get(f"http://{HOST}:{port}/health")
    log(f"/health {status} {body.decode(errors='replace')} workers={pids}")
    return master, pids


def _wait_healthy(master: subprocess.Popen, port: int, workers: int) -> None:
    deadline = time.monotonic() + 90
    healthy = False
    while time.monotonic() < deadline:
        if master.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {master.returncode}")
        with contextlib.suppress(OSError):
            status, body = http_get(f"http://{HOST}:{port}/health")
            healthy = healthy or status == 200
            if status != 200:
                log(f"/health answered {status}: {body[:200]!r}")
        if healthy and len(children(master.pid)) == workers:
            return
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not become healthy within 90s")


def gateway_warnings(log_path: Path) -> dict[str, int]:
    """What the gateway logged at WARNING or above during the run, by message."""
    warned: dict[str, int] = {}
    for line in _lines(log_path):
        for level in (" WARNING ", " ERROR ", " CRITICAL "):
            if level in line:
                message = level.strip() + " " + line.split(level, 1)[1][:200]
                warned[message] = warned.get(message, 0) + 1
    return dict(sorted(warned.items(), key=lambda kv: -kv[1]))


def gateway_errors(log_path: Path) -> list[str]:
    """Lines of the gateway's log that mean the run went wrong."""
    return [
        line
        for line in _lines(log_path)
        if "ERROR" in line or "Traceback" in line or "CRITICAL" in line
    ]


def _lines(log_path: Path) -> list[str]:
    return log_path.read_text(errors="replace").splitlines() if log_path.exists() else []
