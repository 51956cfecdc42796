"""Asking the background worker to check budget thresholds after spending.

The usage writer hands over the keys each batch charged (`alerts_check`); one
thread per process queues a check_budget_alerts task for each, at most once
every CHECK_EVERY seconds per key but never skipping one: a key charged inside
the quiet period is asked for at its end.

The broker is never called on the writer's thread, so a broker that is down
(or hangs) never holds up the usage records. A check that cannot be queued is
tried again every RETRY_EVERY seconds for as long as the process runs; if the
process stops first, the budget alert sweep (usage.tasks.sweep_budget_alerts,
every minute from beat) finds the key among those charged since its last run.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

log = logging.getLogger(__name__)
CHECK_EVERY = 5.0
RETRY_EVERY = 5.0


class AlertAsker:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[int, float] = {}  # key id -> when its check is queued
        self._asked: dict[int, float] = {}  # key id -> when its check was last queued
        self._thread: threading.Thread | None = None
        self._failing = False

    def ask(self, keys: Iterable[int]) -> None:
        now = time.monotonic()
        with self._cond:
            for key_id in keys:
                if key_id not in self._due:
                    last = self._asked.get(key_id)
                    self._due[key_id] = now if last is None else max(now, last + CHECK_EVERY)
            self._cond.notify()
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="alert-asker", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            self._queue(self._next())

    def _next(self) -> list[int]:
        """Wait for the keys whose check is due; they are marked as asked now,
        so a key charged again while its check is being queued is asked for
        again, not folded into a check that may run before its record."""
        with self._cond:
            while True:
                now = time.monotonic()
                ready = [key_id for key_id, at in self._due.items() if at <= now]
                if ready:
                    break
                self._cond.wait(min(self._due.values()) - now if self._due else None)
            for key_id in ready:
                del self._due[key_id]
                self._asked[key_id] = now
            if len(self._asked) > 10_000:
                self._asked = {k: at for k, at in self._asked.items() if at > now - CHECK_EVERY}
            return ready

    def _queue(self, keys: list[int]) -> None:
        from usage.tasks import check_budget_alerts

        for done, key_id in enumerate(keys):
            try:
                check_budget_alerts.apply_async(args=[key_id])
            except Exception:
                self._retry_later(keys[done:])
                return
        if self._failing:
            self._failing = False
            log.warning("budget checks are queued again")

    def _retry_later(self, keys: list[int]) -> None:
        if not self._failing:
            self._failing = True
            log.warning(
                "could not queue budget checks (is the broker down?): trying every %.0fs",
                RETRY_EVERY,
                exc_info=True,
            )
        retry_at = time.monotonic() + RETRY_EVERY
        with self._cond:
            for key_id in keys:
                self._due[key_id] = min(self._due.get(key_id, retry_at), retry_at)


_asker = AlertAsker()


def alerts_check(batch) -> None:
    """Called by the usage writer thread for every batch it has written."""
    keys = {e.api_key_id for e in batch if e.reservation is not None and e.reservation.cost_micros}
    if keys:
        _asker.ask(keys)
