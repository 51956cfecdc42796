"""Admission (DESIGN.md hot-path step 4): rate limits and budgets, per key.

One atomic step per request checks RPM and TPM (sliding one-minute windows)
and the key's total quota, daily and monthly budgets (calendar windows in the
account's time zone), and reserves the request's worst case: its prompt tokens
plus its output cap, priced at the model's prices. The reservation is settled to
the real cost when the usage record is written (settle(), which
gateway/apps.py hands the usage writer, usage/recorder.py), and released when
the request failed before the upstream charged anything.

Backends: a Redis Lua script in production (gateway/limiter_redis.py; its
scripts in gateway/lua/, its leases in gateway/leases.py), an in-process
equivalent in the embedded default (gateway/limiter_local.py). They share
gateway/limiter.py (the reservation, the verdict) and never import this
module; a key's budget windows are usage/budgets.py's, as the budget alerts and
the console's meters count the same periods.
Redis down: budgets fail closed (503, retry shortly); RPM and TPM fail open to
the in-process limiter with each limit divided among the web workers.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from gateway import limiter_local, limiter_redis
from gateway.errors import InsufficientQuota, RateLimited, ServiceUnavailable
from gateway.limiter import WINDOW_MS, Reservation, Verdict
from gateway.tokens import PlainInput, count_prompt, estimate_prompt_text
from purebridge import metrics
from usage.budgets import MICROS, Window, balance_window, budget_windows, now, to_micros
from usage.pricing import MILLION

log = logging.getLogger(__name__)


# key id -> (the key's budget settings, valid from, valid until (epoch s), windows)
_windows_cache: dict[int, tuple[tuple, float, float, list[Window]]] = {}
WINDOWS_CACHE_SIZE = 10_000


def key_windows(key, at: datetime) -> list[Window]:
    """budget_windows() and the account's balance, remembered per key until
    the first of its windows resets (or its budgets, time zone or credit
    change): the same for every request of a day, and computing them is a
    good part of admission's own time."""
    settings_now = (
        key.timezone,
        key.daily_budget_usd,
        key.monthly_budget_usd,
        key.quota_usd,
        key.credited_micros,
    )
    ts = at.timestamp()
    cached = _windows_cache.get(key.id)
    if cached is not None and cached[0] == settings_now and cached[1] <= ts < cached[2]:
        return cached[3]
    windows = budget_windows(key, at)
    if key.credited_micros is not None:
        windows.append(balance_window(key.account_id, key.credited_micros))
    starts = [w.start.timestamp() for w in windows if w.start is not None]
    resets = [w.resets_at.timestamp() for w in windows if w.resets_at is not None]
    if len(_windows_cache) >= WINDOWS_CACHE_SIZE:
        _windows_cache.clear()
    _windows_cache[key.id] = (
        settings_now,
        max(starts, default=-math.inf),
        min(resets, default=math.inf),
        windows,
    )
    return windows


def _duration(ms: int) -> str:
    """A reset time as OpenAI writes it: 1s, 6m0s, 250ms."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = math.ceil(ms / 1000)
    return f"{seconds // 60}m{seconds % 60}s" if seconds >= 60 else f"{seconds}s"


def ratelimit_header_bytes(key, verdict: Verdict) -> list[tuple[bytes, bytes]]:
    """The key's x-ratelimit-* headers as the response carries them."""
    headers = []
    reset = _duration(verdict.retry_after_ms or WINDOW_MS).encode()
    rpm = verdict.rpm_limit or key.rpm_limit
    tpm = verdict.tpm_limit or key.tpm_limit
    if rpm:
        headers += [
            (b"x-ratelimit-limit-requests", b"%d" % rpm),
            (b"x-ratelimit-remaining-requests", b"%d" % max(rpm - verdict.requests, 0)),
            (b"x-ratelimit-reset-requests", reset),
        ]
    if tpm:
        headers += [
            (b"x-ratelimit-limit-tokens", b"%d" % tpm),
            (b"x-ratelimit-remaining-tokens", b"%d" % max(tpm - verdict.tokens, 0)),
            (b"x-ratelimit-reset-tokens", reset),
        ]
    return headers


def _money(micros: int) -> str:
    """Dollars to the cent, and below the cent when there is more: $1.00,
    $0.022, $0.000125."""
    whole, fraction = f"{Decimal(micros) / MICROS:.6f}".rstrip("0").split(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


@dataclass(frozen=True, slots=True)
class Ask:
    """What a request asked to reserve, for the message that refuses it."""

    tokens: int  # prompt plus output cap
    cost_micros: int
    cap: int
    cap_param: str  # the endpoint's name for the output cap; "" when it has no output
    cap_set: bool  # the request set one (else the model's default was used)
    choices: int = 1  # n: each choice may use the whole cap

    def parts(self) -> str:
        """What the reservation is made of."""
        return f"the prompt plus {self.cap_text()}" if self.cap_param else "the input"

    def lower(self) -> str:
        """What to lower for the request to fit."""
        return f"{self.cap_param} or the prompt" if self.cap_param else "the input"

    def smaller(self) -> str:
        """What may fit in what is left."""
        return f"a lower {self.cap_param}" if self.cap_param else "a smaller input"

    def cap_text(self) -> str:
        each = f" for each of n={self.choices} choices" if self.choices > 1 else ""
        if self.cap_set:
            return f"{self.cap_param}={self.cap}{each}"
        return (
            f"the model's default of {self.cap} output tokens{each}, as no {self.cap_param} was set"
        )


def refusal(key, verdict: Verdict, windows: list[Window], ask: Ask, headers: dict):
    """The error for a refused request: rate limits say when to retry; an
    exhausted budget says which, how much, and when it resets, and not to
    retry; a request that cannot fit says what to lower."""
    retry = max(1, math.ceil(verdict.retry_after_ms / 1000))
    if verdict.status == "rpm":
        return RateLimited(
            f"Rate limit reached for requests: {key.rpm_limit} per minute on this key. "
            f"Try again in {retry}s.",
            headers={**headers, "retry-after": str(retry)},
        )
    if verdict.status == "tpm":
        if ask.tokens > key.tpm_limit:
            return RateLimited(
                f"Request too large for this key's tokens per minute: limit {key.tpm_limit}, "
                f"requested {ask.tokens} ({ask.parts()}). Lower {ask.lower()}.",
                headers={**headers, "x-should-retry": "false"},
            )
        return RateLimited(
            f"Rate limit reached for tokens: {key.tpm_limit} per minute on this key, "
            f"{verdict.tokens} used or reserved (each request reserves its prompt and its "
            f"output cap until its usage is known; this one {ask.cap_text()}). "
            f"Try again in {retry}s, or set a lower {ask.cap_param}.",
            headers={**headers, "retry-after": str(retry)},
        )
    window = windows[verdict.window_index]
    # Which window refused, for a client to tell an account to top up from a
    # key's budget to raise.
    headers = {**headers, "x-purebridge-limit": window.name}
    if window.name == "balance":
        return _balance_refusal(window, verdict, ask, headers)
    when = (
        f"It resets at {window.resets_at.isoformat(timespec='minutes')}."
        if window.resets_at
        else "It does not reset; raise the key's quota in the console."
    )
    label = {"daily": "daily budget", "monthly": "monthly budget", "total": "total quota"}
    limit, spent = window.limit_micros, verdict.spent_micros
    if spent < limit:
        # Not used up: this request's worst case does not fit in what is left.
        return InsufficientQuota(
            f"This request could cost up to {_money(ask.cost_micros)} ({ask.parts()}), "
            f"more than the {_money(limit - spent)} left of this key's "
            f"{label[window.name]}: limit {_money(limit)}, spent {_money(spent)}. {when} "
            f"{ask.smaller().capitalize()} may fit now.",
            headers=headers,
            window=window.name,
        )
    return InsufficientQuota(
        f"This key's {label[window.name]} is used up: limit {_money(limit)}, "
        f"spent {_money(spent)}. {when}",
        headers=headers,
        window=window.name,
    )


def _balance_refusal(window: Window, verdict: Verdict, ask: Ask, headers: dict):
    """The account's balance cannot cover the request: how much is left (or
    owed), and where to top up."""
    left = window.limit_micros - verdict.spent_micros
    billing = f"{settings.PUREBRIDGE_CONSOLE_URL}/billing/"
    if left > 0:
        return InsufficientQuota(
            f"This request could cost up to {_money(ask.cost_micros)} ({ask.parts()}), "
            f"more than the {_money(left)} left of this account's balance "
            f"(requests in flight included). Top up at {billing}; {ask.smaller()} "
            f"may fit now.",
            headers=headers,
            window=window.name,
        )
    state = f"owes {_money(-left)}" if left < 0 else f"has {_money(0)} left"
    return InsufficientQuota(
        f"This account's balance is used up: it {state}. "
        f"Buy or redeem a plan at {billing} to go on.",
        headers=headers,
        window=window.name,
    )


def has_limits(key) -> bool:
    return bool(
        key.rpm_limit
        or key.tpm_limit
        or key.quota_usd is not None
        or key.daily_budget_usd is not None
        or key.monthly_budget_usd is not None
        or key.credited_micros is not None
    )


async def admit(
    key,
    model,
    usage,
    *,
    prompt: tuple[str, int] | PlainInput,
    body: dict,
    cap_param: str = "max_tokens",
    cap_to: str = "max_completion_tokens",
    choices: int = 1,
) -> None:
    """Admit the request or raise; on admission `usage.reservation` holds what
    was reserved and the response carries the key's x-ratelimit-* headers.
    `cap_param` is the endpoint's name for the output cap, for messages ("":
    an endpoint without output, embeddings, reserves none); `choices` how
    many answers it asks for (`n`), each reserved whole.

    A request held to a budget or a balance that sets no output cap is sent
    upstream with the model's default as `cap_to` (the endpoint's field for
    it): what was reserved is then its worst case, as the overshoot bound
    (README, "Billing") needs. Without money at stake the body is left alone.

    `prompt` is the request's countable text and its number of messages, or
    a PlainInput (no messages). Keys without limits skip the exact count: the
    estimate only serves records whose upstream reports no usage."""
    if not has_limits(key):
        usage.prompt_estimate = (
            prompt.estimate() if isinstance(prompt, PlainInput) else estimate_prompt_text(*prompt)
        )
        metrics.admission("ok")
        return
    prompt_tokens = usage.prompt_estimate = (
        await prompt.count() if isinstance(prompt, PlainInput) else await count_prompt(*prompt)
    )
    windows = key_windows(key, now())
    requested = _request_cap(body) if cap_param else None
    cap = requested or (model.default_max_output_tokens if cap_param else 0)
    output = cap * choices
    tokens = prompt_tokens + output
    prices = model.prices
    # The prompt at the dearest price it can be charged at: with a prompt
    # cache, writing it may cost more than reading it as plain input.
    prompt_price = max(prices.input, prices.cache_write or prices.input)
    cost = to_micros((prompt_tokens * prompt_price + output * prices.output) / MILLION)
    if requested is None and cap and windows:
        body[cap_to] = cap
    reservation = Reservation(
        key_id=key.id,
        account_id=key.account_id,
        request_id=usage.req.request_id,
        backend="",
        admitted_ms=0,
        tokens=tokens if key.tpm_limit else 0,
        cost_micros=cost if windows else 0,
        windows=tuple(w.key for w in windows),
    )
    # The client may leave while Redis decides. The script runs all the same,
    # so the disconnect watcher does not cancel the request meanwhile (a
    # cancelled wait would lose a reservation Redis made, leaving it counted
    # against the budget for good): the request stops here once the verdict
    # is in, keeping its reservation for its record to release.
    req = usage.req
    req.admitting = True
    try:
        verdict = await _decide(key, reservation, windows)
    except ServiceUnavailable:
        metrics.admission("unavailable")
        raise
    finally:
        req.admitting = False
    metrics.admission(_outcome(verdict, windows))
    req.extra_headers += ratelimit_header_bytes(key, verdict)
    if verdict.status != "ok":
        ask = Ask(tokens, cost, cap, cap_param, cap_set=requested is not None, choices=choices)
        raise refusal(key, verdict, windows, ask, headers={})
    reservation.admitted_ms = verdict.admitted_ms
    usage.reservation = reservation
    if req.disconnected:
        raise asyncio.CancelledError


def _outcome(verdict: Verdict, windows: list[Window]) -> str:
    """The verdict as the metrics name it: a budget refusal of the account's
    balance is "balance"."""
    if verdict.status == "budget" and windows[verdict.window_index].name == "balance":
        return "balance"
    return verdict.status


async def _decide(key, reservation: Reservation, windows: list[Window]) -> Verdict:
    backend: Any = limiter_local.limiter
    if settings.REDIS_URL:
        backend = limiter_redis.limiter
        if limiter_redis.usable():
            reservation.backend = backend.name
            # A broken connection may be one that broke when Redis restarted:
            # ask again before treating Redis as down. (If the first try did
            # reserve and only its reply was lost, the script finds that
            # admission and answers with it: nothing is reserved twice.) A
            # Redis that did not answer in time is down at once: asking again
            # would make every request wait twice for the same news.
            for attempt in range(2):
                try:
                    return await backend.admit(key, reservation, windows, retry=attempt > 0)
                except (RedisError, OSError) as error:
                    if attempt or not isinstance(error, RedisConnectionError | OSError):
                        limiter_redis.mark_down()
                        break
        if windows:
            # Budgets fail closed: admitting blind could overspend without bound.
            raise ServiceUnavailable(
                "Budgets cannot be checked right now; try again shortly.",
                headers={"retry-after": "5"},
            )
        backend = limiter_local.degraded
    reservation.backend = backend.name
    return await backend.admit(key, reservation, windows)


def output_cap(body: dict, model) -> int:
    """The most the answer may cost in tokens: what the request allows, else
    the model's default (never the whole remaining budget)."""
    return _request_cap(body) or model.default_max_output_tokens


def _request_cap(body: dict) -> int | None:
    """The request's output cap (validated already: gateway/validate.py). With
    both chat names set the larger is reserved: an upstream may read either."""
    caps = [
        value
        for name in ("max_completion_tokens", "max_tokens", "max_output_tokens")
        if isinstance(value := body.get(name), int) and value > 0
    ]
    return max(caps, default=None)


def settle(entries) -> None:
    """Replace reservations with real costs (called by the usage writer thread)."""
    reserved = [e for e in entries if e.reservation is not None]
    if not reserved:
        return
    for backend in (limiter_redis.limiter, limiter_local.limiter, limiter_local.degraded):
        mine = [e for e in reserved if e.reservation.backend == backend.name]
        if mine:
            try:
                backend.settle(mine)
            except Exception:
                # The counters stay conservative (reserved, not real): they are
                # rebuilt from the usage records when their window is lost.
                # (Not so for a request a lease admitted whose lease is then
                # reclaimed, its worker killed: its cost goes uncounted.)
                log.warning("settling %d reservations failed", len(mine), exc_info=True)


def reserved_in_flight(account_id: int) -> int | None:
    """Micro-dollars the account's balance holds for its requests in flight
    (for the console; None when Redis cannot say)."""
    name = balance_window(account_id, 0).key
    if not settings.REDIS_URL:
        return limiter_local.limiter.held(name)
    if not limiter_redis.usable():
        return None
    try:
        from purebridge.redis import sync_client

        return max(int(sync_client().hget(name, "held") or 0), 0)  # type: ignore[arg-type]
    except Exception:
        log.warning("could not read the balance counter from Redis", exc_info=True)
        return None


def current_rate(api_key) -> tuple[int, int]:
    """Requests and tokens the key has used in the last minute (for the
    console; read-only, so it may lag a request in flight)."""
    if settings.REDIS_URL and limiter_redis.usable():
        try:
            return limiter_redis.current_rate(api_key.account_id, api_key.id)
        except Exception:
            log.warning("could not read rate windows from Redis", exc_info=True)
            return 0, 0
    return limiter_local.limiter.current_rate(api_key.id)
