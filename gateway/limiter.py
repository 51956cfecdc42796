"""What admission's backends share (gateway/limiter_redis.py,
gateway/limiter_local.py): the reservation a request makes, the verdict a
backend answers, and how a lost budget counter is rebuilt.

gateway/limits.py decides which backend admits a request and imports both; the
backends import this module and never gateway/limits.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from usage.budgets import Window, to_micros

WINDOW_MS = 60_000  # RPM and TPM: a sliding minute


@dataclass(slots=True)
class Reservation:
    key_id: int
    account_id: int
    request_id: str
    backend: str  # "redis" or "local"
    admitted_ms: int
    tokens: int  # reserved against TPM (0: no TPM limit)
    cost_micros: int  # reserved against every window (0: no budget)
    windows: tuple[str, ...] = ()
    # The score of its entry in the key's Redis window (its lease's end when a
    # lease admitted it), and the lease it asked Redis for (requests).
    window_ms: int = 0
    lease_asked: int = 0
    lease: str = ""  # the request that asked for the lease that admitted it


@dataclass(slots=True)
class Verdict:
    """What a limiter backend answers."""

    status: str  # "ok", "rpm", "tpm", "budget", "missing"
    retry_after_ms: int = 0
    requests: int = 0  # in the current window, this request included
    tokens: int = 0
    window_index: int = -1  # for "budget" and "missing"
    spent_micros: int = 0
    admitted_ms: int = 0
    # The limits this backend enforced, when not the key's own (a worker's
    # share of them while Redis is down).
    rpm_limit: int = 0
    tpm_limit: int = 0


def actual(entry) -> tuple[int, int]:
    """Real tokens and cost (micros) of a finished request."""
    return entry.prompt_tokens + entry.completion_tokens, to_micros(entry.cost_usd)


def spent_in(key, window: Window) -> int:
    """A window's spend from the books (micros, rounded up): the key's usage
    (usage/spend.py: the records, the rollups where they are purged), or for
    the balance what the account's usage debits add up to (debited in the
    same transaction as the records are written)."""
    if window.name == "balance":
        from billing.models import Balance

        used = Balance.objects.filter(account_id=key.account_id).values_list("used_usd", flat=True)
        return to_micros(used[0]) if used else 0
    from usage.spend import window_spent

    return to_micros(window_spent(key.id, window.start))
