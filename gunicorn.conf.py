"""gunicorn settings for the web process (production shape).

    gunicorn purebridge.asgi:application

Every value can be set through the environment; command-line flags win.
"""

import multiprocessing
import os

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
