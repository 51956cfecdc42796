import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from purebridge.env import database_from_url, env_bool, env_decimal, env_int

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://purebridge:secret@127.0.0.1:5432/purebridge",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "SECRET_KEY": "k" * 20 + "production-secret-key-with-enough-entropy-1234567890",
    "ALLOWED_HOSTS": "api.purebridge.uk",
    "SECURE_PROXY_SSL_HEADER": "true",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_PRELOAD": "true",
}


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in PRODUCTION_ENV}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_deploy_passes_with_the_documented_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)

    assert result.returncode == 0, result.stdout + result.stderr


def test_production_shape_without_secret_key_refuses_to_start():
    env = {**PRODUCTION_ENV, "SECRET_KEY": ""}

    result = _manage("check", env=env)

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_an_unparseable_setting_names_the_variable():
    result = _manage("check", env={**PRODUCTION_ENV, "PUREBRIDGE_MAX_BODY_BYTES": "lots"})

    assert result.returncode != 0
    assert "PUREBRIDGE_MAX_BODY_BYTES='lots' is not an integer" in result.stderr


def test_env_bool_rejects_words_it_does_not_know(monkeypatch):
    monkeypatch.setenv("PB_FLAG", "maybe")

    with pytest.raises(ImproperlyConfigured, match="PB_FLAG"):
        env_bool("PB_FLAG")


def test_env_int_enforces_its_minimum(monkeypatch):
    monkeypatch.setenv("PB_N", "-1")

    with pytest.raises(ImproperlyConfigured, match="below the minimum"):
        env_int("PB_N", 5, minimum=0)


@pytest.mark.parametrize(
    ("raw", "error"),
    [("1.5.0", "not a number"), ("Infinity", "not a number"), ("-1", "below the minimum")],
)
def test_env_decimal_fails_loudly(monkeypatch, raw, error):
    monkeypatch.setenv("PB_USD", raw)

    with pytest.raises(ImproperlyConfigured, match=error):
        env_decimal("PB_USD", "1")


def test_env_decimal_keeps_the_amount_exact(monkeypatch):
    monkeypatch.setenv("PB_USD", "0.10")

    assert env_decimal("PB_USD", "1") == Decimal("0.10")
    assert env_decimal("PB_UNSET", "2.5") == Decimal("2.5")


def test_database_url_is_parsed_into_django_settings():
    parsed = database_from_url("postgres://u%40x:p%2Fw@db.internal:6543/pb?sslmode=require")

    assert parsed["ENGINE"] == "django.db.backends.postgresql"
    assert (parsed["USER"], parsed["PASSWORD"]) == ("u@x", "p/w")
    assert (parsed["HOST"], parsed["PORT"], parsed["NAME"]) == ("db.internal", "6543", "pb")
    assert parsed["OPTIONS"] == {"sslmode": "require"}


def test_database_url_with_another_scheme_is_refused():
    with pytest.raises(ImproperlyConfigured, match="mysql"):
        database_from_url("mysql://u:p@h/db")


def test_every_scheduled_task_is_one_the_workers_know():
    from django.conf import settings

    from purebridge.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert "gateway.tasks.reclaim_leases" in scheduled
    assert scheduled <= set(app.tasks)
