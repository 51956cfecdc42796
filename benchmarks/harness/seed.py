"""PureBridge's database for a run: migrations, the providers and models, the API keys,
and PostgreSQL's autovacuum held off."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.base import HOST, PYTHON, ROOT, log
from harness.procs import child_setup

# Two providers on the one fake: it serves both APIs, but the operator
# declares which one PureBridge may use.
CHAT_PROVIDER = "bench-fake"  # chat completions only: /v1/responses is translated
RESPONSES_PROVIDER = "bench-fake-responses"  # responses_api = true: passed through
ANTHROPIC_PROVIDER = "bench-fake-anthropic"  # kind anthropic: /v1/messages passed through
# (name, kind, responses_api)
PROVIDERS = (
    (CHAT_PROVIDER, "openai", False),
    (RESPONSES_PROVIDER, "openai", True),
    (ANTHROPIC_PROVIDER, "anthropic", False),
)

# The key with limits: never reached, always checked (RPM, TPM and a daily
# budget: every check admission makes).
LIMITED_KEY_RPM = 1_000_000_000
LIMITED_KEY_TPM = 2_000_000_000
LIMITED_KEY_DAILY_USD = "1000000"


@dataclass(frozen=True)
class Key:
    """An API key to create: its account's email and `createapikey`'s limit flags."""

    email: str = "bench@example.com"
    limits: tuple[str, ...] = ()
    # USD credited to its account: the gateway then holds the account to its
    # balance (the run is PUREBRIDGE_BILLING_MODE=unmetered, so accounts never
    # credited are not).
    credit_usd: str = ""


# Every phase may send with these (Ask.key); a phase that needs another declares it.
KEYS = {
    "plain": Key(),  # no limits: admission skipped
    # Limits far above what a run sends: every request goes through the
    # Redis admission script, none is refused.
    "limited": Key(
        limits=(
            "--rpm",
            str(LIMITED_KEY_RPM),
            "--tpm",
            str(LIMITED_KEY_TPM),
            "--daily-budget",
            LIMITED_KEY_DAILY_USD,
        )
    ),
}


def manage(*argv: str) -> str:
    proc = subprocess.run(
        [PYTHON, "manage.py", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=child_setup,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(argv)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc.stdout


def seed(
    tmp: Path,
    fake_port: int,
    models: dict[str, tuple[str, str]],
    keys: dict[str, Key],
    kinds: dict[str, str],
) -> dict[str, str]:
    """Migrate, load the providers and `models` (public id -> (upstream model,
    provider); of the kind `kinds` gives, else chat), create `keys`: their
    secrets by name."""
    log("manage.py migrate")
    manage("migrate", "--noinput")
    config = tmp / "bench.toml"
    config.write_text(config_toml(fake_port, models, kinds))
    log(f"manage.py loadconfig {config}")
    manage("loadconfig", str(config))
    return {name: create_key(key) for name, key in keys.items()}


def config_toml(fake_port: int, models: dict[str, tuple[str, str]], kinds: dict[str, str]) -> str:
    lines = []
    for provider, kind, responses_api in PROVIDERS:
        lines += [
            "[[providers]]",
            f'name = "{provider}"',
            f'kind = "{kind}"',
            f'base_url = "http://{HOST}:{fake_port}/v1"',
            'api_key = "bench"',
            f"responses_api = {'true' if responses_api else 'false'}",
            "",
        ]
    for public, (upstream, provider) in models.items():
        lines += [
            "[[models]]",
            f'id = "{public}"',
            f'kind = "{kinds.get(public, "chat")}"',
            'input_per_mtok = "1.25"',
            'cached_input_per_mtok = "0.125"',
            'output_per_mtok = "10.00"',
            "[[models.routes]]",
            f'provider = "{provider}"',
            f'upstream_model = "{upstream}"',
            "",
        ]
    return "\n".join(lines)


def create_key(key: Key) -> str:
    log(f"manage.py createapikey --email {key.email} {' '.join(key.limits)}")
    out = manage("createapikey", "--email", key.email, *key.limits)
    if key.credit_usd:
        log(f"manage.py adjustbalance --email {key.email} --amount {key.credit_usd}")
        manage(
            "adjustbalance",
            "--email",
            key.email,
            "--amount",
            key.credit_usd,
            "--reason",
            "benchmark credit",
        )
    secret = out.strip().splitlines()[-1].strip()
    if not secret.startswith("sk-"):
        raise RuntimeError(f"createapikey printed no key: {out!r}")
    return secret


def pause_autovacuum() -> bool:
    """PostgreSQL shares these two cores: autovacuum waking in the middle
    of a phase (after the thousands of records of the one before) took CPU
    from whichever phase it fell in, a different one each run. It is off
    for the run; vacuum() does its work between phases, unmeasured.
    True when it is off."""
    import psycopg

    try:
        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
            db.execute("ALTER SYSTEM SET autovacuum = off")
            db.execute("SELECT pg_reload_conf()")
    except psycopg.Error as exc:
        log(f"could not turn autovacuum off ({exc}); phases may be disturbed by it")
        return False
    return True


def vacuum() -> None:
    import psycopg

    with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as db:
        db.execute("VACUUM ANALYZE")
