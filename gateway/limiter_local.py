"""The in-process backend of admission: the embedded default's limiter (one
process serves everything), and the per-process fallback for rate limits when
Redis is down (each limit divided among the web workers).

Same windows and verdicts as the Redis script. Admission runs on the event
loop and settlement on the usage writer thread, so a lock guards the state;
nothing inside it awaits.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque

from django.conf import settings

from gateway.db import run_db
from gateway.limiter import WINDOW_MS, Reservation, Verdict, actual, spent_in
from usage import budgets
from usage.budgets import Window


class LocalLimiter:
    def __init__(self, name: str, divisor: int = 1) -> None:
        self.name = name
        self.divisor = max(divisor, 1)
        self._lock = threading.Lock()
        self._requests: dict[int, deque[int]] = {}
        # (admitted at, tokens), kept in time order: settlement corrections are
        # filed at their request's admission time.
        self._tokens: dict[int, list[tuple[int, int]]] = {}
        self._token_sums: dict[int, int] = {}
        self._spend: dict[str, tuple[int, float | None]] = {}  # key -> (micros, expires at)
        self._held: dict[str, int] = {}  # key -> micros reserved by requests in flight

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._tokens.clear()
            self._token_sums.clear()
            self._spend.clear()
            self._held.clear()

    async def admit(self, key, reservation: Reservation, windows: list[Window]) -> Verdict:
        verdict = self._admit(key, reservation, windows)
        if verdict.status != "missing":
            return verdict
        for window in windows:
            spent = await run_db(spent_in, key, window)
            with self._lock:
                if self._current(window.key) is None:
                    ttl = window.ttl(budgets.now())
                    expires = time.time() + ttl if ttl else None
                    self._spend[window.key] = (spent, expires)
        return self._admit(key, reservation, windows)

    def _current(self, name: str) -> int | None:
        entry = self._spend.get(name)
        if entry is None or (entry[1] is not None and entry[1] < time.time()):
            self._spend.pop(name, None)
            return None
        return entry[0]

    def _admit(self, key, reservation: Reservation, windows: list[Window]) -> Verdict:
        now = int(time.time() * 1000)
        rpm = (key.rpm_limit or 0) // self.divisor or (1 if key.rpm_limit else 0)
        tpm = (key.tpm_limit or 0) // self.divisor or (1 if key.tpm_limit else 0)
        with self._lock:
            requests = self._requests.setdefault(key.id, deque())
            while requests and requests[0] <= now - WINDOW_MS:
                requests.popleft()
            tokens = self._tokens.setdefault(key.id, [])
            expired = bisect.bisect_right(tokens, (now - WINDOW_MS, float("inf")))
            used = self._token_sums.get(key.id, 0) - sum(n for _, n in tokens[:expired])
            del tokens[:expired]
            self._token_sums[key.id] = used
            if rpm and len(requests) >= rpm:
                retry = requests[0] + WINDOW_MS - now
                return Verdict(
                    "rpm", retry, len(requests), used, admitted_ms=now, rpm_limit=rpm, tpm_limit=tpm
                )
            if tpm and used + reservation.tokens > tpm:
                retry = tokens[0][0] + WINDOW_MS - now if tokens else WINDOW_MS
                return Verdict(
                    "tpm", retry, len(requests), used, admitted_ms=now, rpm_limit=rpm, tpm_limit=tpm
                )
            for index, window in enumerate(windows):
                spent = self._current(window.key)
                if spent is None:
                    return Verdict("missing", 0, len(requests), used, index, admitted_ms=now)
                if spent + reservation.cost_micros > window.limit_micros:
                    return Verdict("budget", 0, len(requests), used, index, spent, admitted_ms=now)
            if rpm:
                requests.append(now)
            if tpm:
                tokens.append((now, reservation.tokens))
                used += reservation.tokens
                self._token_sums[key.id] = used
            for window in windows:
                micros, expires = self._spend[window.key]
                self._spend[window.key] = (micros + reservation.cost_micros, expires)
                self._held[window.key] = self._held.get(window.key, 0) + reservation.cost_micros
            return Verdict(
                "ok", 0, len(requests), used, admitted_ms=now, rpm_limit=rpm, tpm_limit=tpm
            )

    def held(self, name: str) -> int:
        """Micros the counter `name` holds for requests in flight."""
        with self._lock:
            return self._held.get(name, 0)

    def current_rate(self, key_id: int) -> tuple[int, int]:
        since = int(time.time() * 1000) - WINDOW_MS
        with self._lock:
            requests = sum(1 for at in self._requests.get(key_id, ()) if at > since)
            tokens = sum(n for at, n in self._tokens.get(key_id, ()) if at > since)
        return requests, max(tokens, 0)

    def settle(self, entries) -> None:
        now = int(time.time() * 1000)
        with self._lock:
            for entry in entries:
                r = entry.reservation
                tokens, cost = actual(entry)
                if r.tokens and r.admitted_ms > now - WINDOW_MS and r.key_id in self._tokens:
                    bisect.insort(self._tokens[r.key_id], (r.admitted_ms, tokens - r.tokens))
                    self._token_sums[r.key_id] = (
                        self._token_sums.get(r.key_id, 0) + tokens - r.tokens
                    )
                if r.cost_micros:
                    for name in r.windows:
                        if self._current(name) is not None:
                            micros, expires = self._spend[name]
                            self._spend[name] = (micros + cost - r.cost_micros, expires)
                        if name in self._held:
                            self._held[name] -= r.cost_micros


def _web_workers() -> int:
    return settings.PUREBRIDGE_WEB_WORKERS


limiter = LocalLimiter("local")
degraded = LocalLimiter("degraded", divisor=_web_workers())
