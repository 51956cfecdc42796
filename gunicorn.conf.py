"""gunicorn settings for the web process (production shape).

    gunicorn purebridge.asgi:application

Every value can be set through the environment; command-line flags win.
"""

import multiprocessing
import os
import shutil
import tempfile

bind = os.environ.get("PUREBRIDGE_BIND", "127.0.0.1:8000")
worker_class = "uvicorn_worker.UvicornWorker"
# Async workers: one per core serves thousands of concurrent streams each.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
backlog = int(os.environ.get("PUREBRIDGE_BACKLOG", 2048))
# Heartbeat only: a worker blocked this long is restarted. Streams are not
# affected (the event loop keeps beating while they run).
timeout = int(os.environ.get("PUREBRIDGE_WORKER_TIMEOUT", 60))
# On restart, let in-flight requests (and long streams) finish, then flush usage.
graceful_timeout = int(os.environ.get("PUREBRIDGE_GRACEFUL_TIMEOUT", 120))
keepalive = int(os.environ.get("PUREBRIDGE_KEEPALIVE", 75))
# uvicorn's own X-Forwarded-For handling is off: it would replace the
# client's address with the header's whenever the peer is loopback, so a
# forged header would pass a key's IP allowlist. PureBridge reads the header
# itself, through PUREBRIDGE_TRUSTED_PROXY_HOPS proxies (gateway/http.py);
# the console learns https from SECURE_PROXY_SSL_HEADER.
forwarded_allow_ips = ""
accesslog = os.environ.get("PUREBRIDGE_ACCESS_LOG") or None
# Import the app once in the master: workers forked from it share the
# read-only memory (the tokenizer's tables above all) instead of each loading it.
preload_app = True
loglevel = os.environ.get("LOG_LEVEL", "info").lower()


def _metrics_directory() -> str | None:
    """With metrics on, each worker keeps its counts in files of
    PROMETHEUS_MULTIPROC_DIR and a scrape adds them up (purebridge/metrics.py).
    Made fresh here, when this file is read: with preload_app the app, and so
    prometheus_client, is imported before any server hook runs, and the
    variable must be set by then. A directory given is emptied of the last
    run's files; none given, a temporary one is made (and removed on exit)."""
    if os.environ.get("PUREBRIDGE_METRICS", "").strip().lower() not in ("1", "true", "yes", "on"):
        return None
    if os.environ.get("PUREBRIDGE_METRICS_DIR_OF") == str(os.getpid()):
        return None  # this file read again (a reload): the workers' files stay
    os.environ["PUREBRIDGE_METRICS_DIR_OF"] = str(os.getpid())
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        os.makedirs(given, exist_ok=True)
        for name in os.listdir(given):
            if name.endswith(".db"):
                os.remove(os.path.join(given, name))
        return None
    made = tempfile.mkdtemp(prefix="purebridge-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


_made_metrics_directory = _metrics_directory()


def child_exit(server, worker):
    # A dead worker's gauges stop counting ("live" modes); its counters stay.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _made_metrics_directory:
        shutil.rmtree(_made_metrics_directory, ignore_errors=True)
