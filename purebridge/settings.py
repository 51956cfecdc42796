"""PureBridge settings, all from environment variables (see .env.example).

With nothing set, PureBridge runs in its embedded default: a SQLite file and no
Redis. DATABASE_URL and REDIS_URL switch to the production shape.
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from pathlib import Path

from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from purebridge.env import (
    database_from_url,
    env_bool,
    env_decimal,
    env_float,
    env_int,
    env_list,
    env_str,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("PUREBRIDGE_DATA_DIR") or BASE_DIR / "var")

DATABASE_URL = env_str("DATABASE_URL")
REDIS_URL = env_str("REDIS_URL")
# Connections each web worker's event loop may hold to Redis: a request waits
# for a free one rather than opening more (1,000 open streams must not mean
# hundreds of connections per worker).
REDIS_POOL_SIZE = env_int("REDIS_POOL_SIZE", 32, minimum=1)
# How long any Redis command may wait for its answer, and a connection for
# Redis to accept it. A Redis that does not answer in time counts as down
# (README "When PostgreSQL or Redis is down"): budgets fail closed, rate
# limits fall back to each process, and it is asked again a second later.
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", 1.0, minimum=0.05)
REDIS_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 1.0, minimum=0.05)
EMBEDDED = not DATABASE_URL

DEBUG = env_bool("DEBUG", default=False)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not EMBEDDED:
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is set")
    # Embedded default: a key made once and kept beside the SQLite file, so that
    # hashed API keys and encrypted provider keys survive a restart.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
# Keyed hash of API keys and encryption of provider keys. Separate settings so
# SECRET_KEY (sessions, CSRF) can be rotated without invalidating every API key;
# both default to values derived from SECRET_KEY.
PUREBRIDGE_KEY_HASH_SECRET = env_str("PUREBRIDGE_KEY_HASH_SECRET") or SECRET_KEY
PUREBRIDGE_ENCRYPTION_KEY = env_str("PUREBRIDGE_ENCRYPTION_KEY") or SECRET_KEY

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "accounts",
    "console",
    "keys",
    "gateway",
    "usage",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # A 503 page at once while PostgreSQL is taken for down (before the
    # session and auth middleware, which would read it).
    "console.unavailable.database_unavailable",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "purebridge.urls"
ASGI_APPLICATION = "purebridge.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL deadlines (README "When PostgreSQL or Redis is down"). Opening a
# connection, in every process:
DATABASE_CONNECT_TIMEOUT = env_int("DATABASE_CONNECT_TIMEOUT", 2, minimum=1)
# In web processes only (not migrations, not Celery's long jobs): PostgreSQL
# cancels a statement that runs longer, and the process itself gives up on
# any wait for the server one second after that (a frozen server or a lost
# network cancels nothing). 0: neither.
DATABASE_STATEMENT_TIMEOUT = env_float("DATABASE_STATEMENT_TIMEOUT", 5.0, minimum=0.0)
DATABASE_POOL_MAX = env_int("DATABASE_POOL_MAX", 10, minimum=1)
DATABASE_POOL_MAX_WAITING = env_int("DATABASE_POOL_MAX_WAITING", 32, minimum=1)

if EMBEDDED:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "purebridge.sqlite3",
            "OPTIONS": {
                # WAL lets the console read while the usage writer and the
                # background worker write; IMMEDIATE avoids upgrade deadlocks.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
else:
    from purebridge.dbconn import DeadlineConnection

    _database = database_from_url(DATABASE_URL)
    # Under ASGI persistent connections leak across threads; psycopg's own pool
    # hands connections out per use instead.
    _database["CONN_MAX_AGE"] = 0
    # Libpq counts whole seconds, and at least 2.
    _database["OPTIONS"].setdefault("connect_timeout", str(DATABASE_CONNECT_TIMEOUT))
    _database["OPTIONS"]["pool"] = {
        "min_size": env_int("DATABASE_POOL_MIN", 1, minimum=0),
        "max_size": DATABASE_POOL_MAX,
        # A connection asked for waits this long, and this many may wait:
        # past either, the caller gets an error (a 503 on the request path).
        "timeout": env_float("DATABASE_POOL_TIMEOUT", 3.0, minimum=0.1),
        "max_waiting": DATABASE_POOL_MAX_WAITING,
        # A connection lost (PostgreSQL stopped) is reopened with a backoff
        # that doubles; giving up after a few seconds lets the next request
        # try at once, so a database that is back is used again within seconds
        # of it, not minutes (psycopg's default is to keep doubling for 5).
        "reconnect_timeout": 5.0,
        # Every wait on the server has a deadline (purebridge/dbconn.py).
        "connection_class": DeadlineConnection,
    }
    DATABASES = {"default": _database}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
# The app serves /static/ itself (Django's static handler, in front of the
# console only, never /v1): the console has a handful of small files, and
# `make run` has no proxy. Set false when a proxy serves STATIC_ROOT.
PUREBRIDGE_SERVE_STATIC = env_bool("PUREBRIDGE_SERVE_STATIC", default=True)

# Throttled logins and other console counters. Redis shares them between web
# processes; the embedded default has one process, so memory is enough.
if REDIS_URL:
    from redis.backoff import NoBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.retry import Retry

    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "pb-console",
            # redis-py's default waits 5 s per try and tries a timeout 4 times;
            # a Redis that does not answer is a 503 page by REDIS_TIMEOUT.
            "OPTIONS": {
                "socket_timeout": REDIS_TIMEOUT,
                "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
                "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=not DEBUG and not EMBEDDED)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

EMAIL_BACKEND = env_str(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend"
    if env_str("EMAIL_HOST")
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH") or str(DATA_DIR / "emails")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "PureBridge <noreply@localhost>")

# Celery: Redis in production; in the embedded default a broker on the local
# filesystem, so the worker and beat still run with nothing installed.
# Redis hands a task that was taken but not acknowledged within the visibility
# timeout to another worker: that is how the task of a worker killed mid-run
# (SIGKILL, the host gone) is run again. It must be longer than any task runs
# and any countdown waits (alert retries wait at most 5 minutes), or a task
# still running, or waiting, is handed to a second worker as well (each task
# is safe to run twice, but that is wasted work). See README "Background tasks".
_visibility_timeout = env_int("CELERY_VISIBILITY_TIMEOUT", 600, minimum=1)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    # Without the socket timeouts, a task sent to a Redis that accepts
    # connections and never answers waits for ever. Not below 2 s: a
    # worker's blocking pop waits 1 s for its answer.
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
        "visibility_timeout": _visibility_timeout,
        "socket_timeout": max(REDIS_TIMEOUT, 2.0),
        "socket_connect_timeout": REDIS_CONNECT_TIMEOUT,
    }
else:
    _broker_dir = DATA_DIR / "celery"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    # A host named, or kombu warns that none was supplied (it has no use here).
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
# A task is acknowledged once it has run, and given back to the queue if its
# worker process dies under it (WorkerLostError: the OOM killer, a SIGKILL), so
# alerts, rollups and lease reclaims are not lost with a worker. Every task is
# therefore safe to run twice (idempotent, or claiming its work with a unique
# row); a task that kills its worker every time would be redelivered for ever.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# Every periodic task, and nothing else schedules them. Each also repairs what
# a lost run of itself missed, so a run that beat could not send (the broker
# down) or that died is made good by the next.
CELERY_BEAT_SCHEDULE = {
    # Fold the usage records written since the last run into per-hour
    # aggregates for dashboards (usage/watermarks.py); a minute keeps dashboards
    # fresh while each run reads only the new records.
    "usage-rollup": {"task": "usage.tasks.rollup_usage", "schedule": 60.0},
    # Raw usage records past PUREBRIDGE_USAGE_RETENTION_DAYS (usage/retention.py).
    "usage-retention": {"task": "usage.tasks.purge_usage", "schedule": 3600.0},
    # Check the budgets of every key charged since the last sweep: a crossing
    # whose check the usage writer could not queue is mailed within a minute.
    "budget-alert-sweep": {"task": "usage.tasks.sweep_budget_alerts", "schedule": 60.0},
    # Admission leases a killed web worker never returned (gateway/leases.py).
    "reclaim-leases": {"task": "gateway.tasks.reclaim_leases", "schedule": 60.0},
    # Usage records of requests whose web worker died mid-request (a dead
    # worker's journal is found PUREBRIDGE_JOURNAL_TTL after its last sign of life).
    "recover-journals": {"task": "gateway.tasks.recover_journals", "schedule": 30.0},
    # The books checked (balance = entries, usage debits = usage records);
    # differences are logged as errors.
    "reconcile-books": {"task": "billing.tasks.reconcile_books", "schedule": 3600.0},
    # Stripe Checkout purchases paid but never credited because their webhook
    # was lost: each waiting one (older than 5 minutes, the webhook's turn) is
    # asked of Stripe. Every 10 minutes bounds how long a customer waits.
    "fulfil-lost-checkouts": {"task": "billing.tasks.fulfil_lost_checkouts", "schedule": 600.0},
    # Credits past their plan's validity (billing.services.credits_expire).
    "expire-credits": {"task": "billing.tasks.expire_credits", "schedule": 600.0},
    # Low-balance alerts (billing/alerts.py): balances below the threshold their
    # account set, whose crossing is not mailed yet. A sweep, not a task queued
    # by the usage writer, which must not wait on the broker inside its
    # transaction; a minute is soon enough for "top up before you run out".
    "low-balance-alerts": {"task": "billing.tasks.sweep_low_balance_alerts", "schedule": 60.0},
    # Unusual spend (usage/anomalies.py): each key's last clock hour against its
    # own baseline, from the hourly rollups. Five minutes past the hour, when
    # the per-minute rollup has folded the hour that just ended.
    "spend-anomalies": {
        "task": "usage.tasks.check_spend_anomalies",
        "schedule": crontab(minute=5),
    },
}

# Unusual spend (README "Unusual spend"): a key's hour is unusual when its
# spend, its requests or its tokens per request are at least
# PUREBRIDGE_ANOMALY_FACTOR times the median of that figure over the key's
# active hours in the PUREBRIDGE_ANOMALY_BASELINE_DAYS before it; never with
# fewer than PUREBRIDGE_ANOMALY_MIN_HISTORY_HOURS active hours to compare
# with (a new key), nor below PUREBRIDGE_ANOMALY_MIN_SPEND_USD spent in the
# hour (a tiny key).
PUREBRIDGE_ANOMALY_FACTOR = env_decimal("PUREBRIDGE_ANOMALY_FACTOR", "5", minimum=Decimal("1.5"))
PUREBRIDGE_ANOMALY_BASELINE_DAYS = env_int(
    "PUREBRIDGE_ANOMALY_BASELINE_DAYS", 7, minimum=1, maximum=90
)
PUREBRIDGE_ANOMALY_MIN_HISTORY_HOURS = env_int(
    "PUREBRIDGE_ANOMALY_MIN_HISTORY_HOURS", 12, minimum=1
)
PUREBRIDGE_ANOMALY_MIN_SPEND_USD = env_decimal("PUREBRIDGE_ANOMALY_MIN_SPEND_USD", "1")

# The /v1 hot path.
PUREBRIDGE_MAX_BODY_BYTES = env_int("PUREBRIDGE_MAX_BODY_BYTES", 8 * 1024 * 1024, minimum=1024)
# A request body that stops arriving for PUREBRIDGE_BODY_IDLE_SECONDS, or is
# not all in within PUREBRIDGE_BODY_TOTAL_SECONDS, is answered 408 and its
# connection closed: a client that sends a byte a second would otherwise hold
# its worker's memory and task for as long as it likes. 30 s moves the 8 MiB
# cap over a 2.3 Mbit/s uplink.
PUREBRIDGE_BODY_IDLE_SECONDS = env_float("PUREBRIDGE_BODY_IDLE_SECONDS", 5.0, minimum=0.1)
PUREBRIDGE_BODY_TOTAL_SECONDS = env_float("PUREBRIDGE_BODY_TOTAL_SECONDS", 30.0, minimum=0.1)
# Bodies one worker may be receiving at once when they arrive in more than one
# piece; past it a new one is refused with 503 (Retry-After: 1). Bounds what
# slow clients hold: at most this many partial bodies of up to the cap each.
PUREBRIDGE_MAX_PENDING_BODIES = env_int("PUREBRIDGE_MAX_PENDING_BODIES", 128, minimum=1)
# The most read from an upstream for one answer: a whole non-streaming body
# (counted as inflated, so a compressed one cannot pass it) or one event of a
# stream. Twice the request cap: an answer may echo the request (Responses
# echoes instructions and tools) and add output of its own.
PUREBRIDGE_MAX_UPSTREAM_BODY_BYTES = env_int(
    "PUREBRIDGE_MAX_UPSTREAM_BODY_BYTES", 2 * PUREBRIDGE_MAX_BODY_BYTES, minimum=1024
)
PUREBRIDGE_BODY_SHA256_ECHO = env_bool("PUREBRIDGE_BODY_SHA256_ECHO", default=False)
# How long a worker trusts its in-process copy of a key or the model catalogue
# when no invalidation message arrives (Redis down, or embedded mode with a
# second process such as the admin in another worker).
PUREBRIDGE_CACHE_TTL = env_float("PUREBRIDGE_CACHE_TTL", 30.0, minimum=0.0)
PUREBRIDGE_API_BASE_URL = env_str("PUREBRIDGE_API_BASE_URL", "http://127.0.0.1:8000")
# Where the console is, for links in emails and Stripe Checkout's return pages.
PUREBRIDGE_CONSOLE_URL = env_str("PUREBRIDGE_CONSOLE_URL", PUREBRIDGE_API_BASE_URL).rstrip("/")
PUREBRIDGE_KEY_PREFIX = "sk-pb-"
# Web worker processes per host: when Redis is down each enforces its share
# of a key's RPM and TPM (budgets then fail closed).
PUREBRIDGE_WEB_WORKERS = env_int(
    "PUREBRIDGE_WEB_WORKERS", env_int("WEB_CONCURRENCY", os.cpu_count() or 1, minimum=1), minimum=1
)
# Routes tried for one request before the client gets the last error.
PUREBRIDGE_MAX_ATTEMPTS = env_int("PUREBRIDGE_MAX_ATTEMPTS", 3, minimum=1)
# A client that leaves mid-stream: PureBridge reads on (within these bounds)
# to the upstream's final usage and charges that; past them it closes the
# upstream and charges an estimate of what was delivered. 0 closes at once.
PUREBRIDGE_DRAIN_SECONDS = env_float("PUREBRIDGE_DRAIN_SECONDS", 5.0, minimum=0.0)
PUREBRIDGE_DRAIN_BYTES = env_int("PUREBRIDGE_DRAIN_BYTES", 256 * 1024, minimum=0)
# How long /v1/responses keeps a conversation for `previous_response_id` when
# the upstream keeps none itself.
PUREBRIDGE_RESPONSE_RETENTION_SECONDS = env_int(
    "PUREBRIDGE_RESPONSE_RETENTION_SECONDS", 24 * 3600, minimum=60
)
# A refusal of no key past the first few of its client in a minute (gateway/
# refusals.py) is answered after this pause: a client sending made-up keys one
# after another sends fewer. 0 answers at once.
PUREBRIDGE_REFUSAL_PAUSE_SECONDS = env_float("PUREBRIDGE_REFUSAL_PAUSE_SECONDS", 0.25, minimum=0.0)
# Usage records are written by a background thread in batches.
# Raw usage records (the request log) are kept this many days; the rollups
# that every chart and money sum reads for older periods, for good. At least
# 35: this month's figures on the overview read the raw records.
PUREBRIDGE_USAGE_RETENTION_DAYS = env_int("PUREBRIDGE_USAGE_RETENTION_DAYS", 90, minimum=35)
PUREBRIDGE_USAGE_FLUSH_SECONDS = env_float("PUREBRIDGE_USAGE_FLUSH_SECONDS", 0.2, minimum=0.01)
# The most records a web process keeps waiting for the database (while it is
# down; about 1 KB each); at this many it refuses new /v1 requests with 503
# rather than lose the record of one it served.
PUREBRIDGE_USAGE_BACKLOG_MAX = env_int("PUREBRIDGE_USAGE_BACKLOG_MAX", 50_000, minimum=1)
# The longest a /v1 request waits for PostgreSQL (a key or the model
# catalogue not cached yet, a budget counter rebuilt), a retry on a fresh
# connection included; then 503.
PUREBRIDGE_DB_TIMEOUT = env_float("PUREBRIDGE_DB_TIMEOUT", 3.0, minimum=0.1)
# The largest token count an upstream's usage is believed for (per field, per
# request); a larger one is replaced by PureBridge's own count (gateway/reported.py).
PUREBRIDGE_MAX_REPORTED_TOKENS = env_int(
    "PUREBRIDGE_MAX_REPORTED_TOKENS", 10_000_000, minimum=1, maximum=2_000_000_000
)
# A web worker not heard from for this long is dead: the requests it traced in
# its journal are recorded by the recover-journals task (gateway/journal.py).
PUREBRIDGE_JOURNAL_TTL = env_float("PUREBRIDGE_JOURNAL_TTL", 30.0, minimum=1.0)
# The proxies (load balancers) in front of PureBridge whose X-Forwarded-For
# it believes: with N, a client's address is the Nth entry from the right of
# that header, the socket's peer being the last proxy. 0: the header is never
# believed, the socket's peer is the client (gateway/http.py client_address).
PUREBRIDGE_TRUSTED_PROXY_HOPS = env_int("PUREBRIDGE_TRUSTED_PROXY_HOPS", 0, minimum=0, maximum=32)
# Prometheus metrics at /metrics (gateway/metrics.py): 404 unless enabled;
# with a token, scrapers send it as a bearer token.
PUREBRIDGE_METRICS = env_bool("PUREBRIDGE_METRICS", default=False)
PUREBRIDGE_METRICS_TOKEN = env_str("PUREBRIDGE_METRICS_TOKEN")
# The most choices (`n`) one request may ask for: each is reserved against budgets.
PUREBRIDGE_MAX_CHOICES = env_int("PUREBRIDGE_MAX_CHOICES", 128, minimum=1, maximum=128)

# Who the gateway holds to a balance (billing, gateway/limits.py):
# "prepaid": every account; one never credited has nothing to spend and is
#   refused with 429 insufficient_quota until it buys or redeems a plan.
# "unmetered": accounts credited at least once (a plan bought or redeemed, an
#   adjustment) are held to their balance; the others are served without one
#   (a self-hosted team gateway). Usage is debited in the books either way.
PUREBRIDGE_BILLING_MODE = env_str("PUREBRIDGE_BILLING_MODE", "prepaid").lower()
if PUREBRIDGE_BILLING_MODE not in ("prepaid", "unmetered"):
    raise ImproperlyConfigured(
        f"PUREBRIDGE_BILLING_MODE={PUREBRIDGE_BILLING_MODE!r}: use prepaid or unmetered"
    )

# Plans bought with Stripe Checkout (billing/stripe_api.py). Both secrets, or
# neither (then "Buy" answers that card payments are not set up, and the
# webhook refuses with 503). STRIPE_API_BASE is for the tests' fake Stripe.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET")
STRIPE_API_BASE = env_str("STRIPE_API_BASE", "https://api.stripe.com").rstrip("/")
STRIPE_TIMEOUT_SECONDS = env_float("STRIPE_TIMEOUT_SECONDS", 20.0, minimum=1.0)
if bool(STRIPE_SECRET_KEY) != bool(STRIPE_WEBHOOK_SECRET):
    raise ImproperlyConfigured(
        "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET go together: set both, or neither"
    )
if STRIPE_SECRET_KEY and not STRIPE_SECRET_KEY.startswith(("sk_", "rk_")):
    raise ImproperlyConfigured("STRIPE_SECRET_KEY is a secret key (sk_...) or restricted (rk_...)")
if STRIPE_WEBHOOK_SECRET and not STRIPE_WEBHOOK_SECRET.startswith("whsec_"):
    raise ImproperlyConfigured("STRIPE_WEBHOOK_SECRET is the endpoint's signing secret (whsec_...)")
if not STRIPE_API_BASE.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"STRIPE_API_BASE={STRIPE_API_BASE!r} is not an http(s) URL")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO").upper()},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
