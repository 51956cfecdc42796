"""The embedded default's demo: models, a login and an API key (`make run`)."""

import json
import os
import secrets
from decimal import Decimal

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.models import User
from billing.config import plans_apply
from billing.models import LedgerEntry
from billing.services import ledger_post
from gateway.config import config_apply
from keys.models import ApiKey
from keys.services import key_create, key_hash_matches

DEMO_EMAIL = "demo@purebridge.local"
# The product page's model ids, so its examples work verbatim against a local
# instance, and the upstream model each one maps to when OPENAI_API_KEY is set.
DEMO_MODELS = {
    "codex-auto-review": ("gpt-5.5", ("1.25", "0.125", "10.00")),
    "gpt-5.4-mini": ("gpt-5.4-mini", ("0.25", "0.025", "2.00")),
    "gpt-5.5": ("gpt-5.5", ("1.25", "0.125", "10.00")),
}


ANTHROPIC_MODEL = "claude-sonnet-4-5"


def demo_document() -> dict:
    providers: list[dict] = [{"name": "demo-echo", "kind": "echo"}]
    upstream = "demo-echo"
    if os.environ.get("OPENAI_API_KEY"):
        providers.append(
            {
                "name": "openai",
                "kind": "openai",
                "base_url": os.environ.get("OPENAI_BASE_URL", "https://api.openai.com/v1"),
                "api_key_env": "OPENAI_API_KEY",
                "responses_api": True,
            }
        )
        upstream = "openai"
    models = [
        {
            "id": public_id,
            "input_per_mtok": prices[0],
            "cached_input_per_mtok": prices[1],
            "output_per_mtok": prices[2],
            "routes": [
                {
                    "provider": upstream,
                    "upstream_model": upstream_model if upstream == "openai" else "echo",
                }
            ],
        }
        for public_id, (upstream_model, prices) in DEMO_MODELS.items()
    ]
    models.append(
        {"id": "demo-echo", "routes": [{"provider": "demo-echo", "upstream_model": "echo"}]}
    )
    # An embedding model, so /v1/embeddings works on a fresh install too.
    embedding = (
        ("openai", "text-embedding-3-small") if upstream == "openai" else ("demo-echo", "echo")
    )
    models.append(
        {
            "id": "text-embedding-3-small",
            "kind": "embedding",
            "input_per_mtok": "0.02",
            "cached_input_per_mtok": "0.02",
            "output_per_mtok": "0",
            "routes": [{"provider": embedding[0], "upstream_model": embedding[1]}],
        }
    )
    if os.environ.get("ANTHROPIC_API_KEY"):
        providers.append(
            {
                "name": "anthropic",
                "kind": "anthropic",
                "base_url": os.environ.get("ANTHROPIC_BASE_URL", "https://api.anthropic.com/v1"),
                "api_key_env": "ANTHROPIC_API_KEY",
            }
        )
        models.append(
            {
                "id": "claude-sonnet",
                "input_per_mtok": "3",
                "cached_input_per_mtok": "0.30",
                "cache_write_per_mtok": "3.75",
                "output_per_mtok": "15",
                "routes": [{"provider": "anthropic", "upstream_model": ANTHROPIC_MODEL}],
            }
        )
    return {"providers": providers, "models": models}


# Plans the demo offers, so the billing page has something to show.
DEMO_PLANS = [
    {"name": "starter", "title": "Starter", "price": "5.00", "credit_usd": "5"},
    {
        "name": "builder",
        "title": "Builder",
        "price": "20.00",
        "credit_usd": "22",
        "recommended": True,
        "display_order": 1,
    },
    {
        "name": "team",
        "title": "Team",
        "price": "100.00",
        "credit_usd": "120",
        "credit_valid_days": 365,
        "display_order": 2,
    },
]
# Credit the demo account starts with, so its first request is served.
STARTER_CREDIT = Decimal("5")


class Command(BaseCommand):
    help = "Create the demo models, login and API key, and print them."

    def add_arguments(self, parser):
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url: str, **options):
        report = config_apply(demo_document())
        plans_apply(DEMO_PLANS, prune=False, report=report)
        state_file = settings.DATA_DIR / "demo.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        user = User.objects.filter(email=DEMO_EMAIL).first()
        if user is None or not state.get("password") or not user.check_password(state["password"]):
            state["password"] = secrets.token_urlsafe(12)
            if user is None:
                user = User.objects.create_superuser(DEMO_EMAIL, state["password"])
            else:
                user.set_password(state["password"])
                user.save()
        key = ApiKey.objects.filter(account=user.account, name="demo").first()
        if (
            key is None
            or not state.get("api_key")
            or not key_hash_matches(state["api_key"], key.secret_hash)
        ):
            if key is not None:
                key.delete()
            # Limits generous enough never to get in the way of trying things,
            # present so responses show the x-ratelimit-* headers.
            _, state["api_key"] = key_create(
                account=user.account, name="demo", rpm_limit=600, tpm_limit=2_000_000
            )
        # Once per account: the source says so.
        ledger_post(
            account_id=user.account_id,
            kind=LedgerEntry.Kind.ADJUSTMENT,
            amount=STARTER_CREDIT,
            source=f"demo:starter-credit:{user.account_id}",
            reason="Starter credit of the demo account.",
        )
        # Kept beside the SQLite file (like the generated SECRET_KEY) so the
        # same demo credentials are printed at every start.
        state_file.write_text(json.dumps(state))
        state_file.chmod(0o600)
        self.stdout.write(
            "\n".join(
                [
                    "",
                    "PureBridge is starting (embedded default)",
                    f"  Console:   {base_url}/   (admin: {base_url}/admin/)",
                    f"  Login:     {DEMO_EMAIL} / {state['password']}",
                    f"  API base:  {base_url}/v1",
                    f"  API key:   {state['api_key']}",
                    f"  Models:    {', '.join(m['id'] for m in demo_document()['models'])}",
                    "",
                    "  Try:",
                    f"  curl {base_url}/v1/chat/completions \\",
                    f'    -H "Authorization: Bearer {state["api_key"]}" \\',
                    '    -H "Content-Type: application/json" \\',
                    """    -d '{"model": "codex-auto-review", "messages": [{"role": "user", "content": "Say hello from PureBridge."}]}'""",
                    "",
                ]
            )
        )
