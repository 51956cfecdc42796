"""Asking the background worker to check budget thresholds after spending.

Called by the usage writer thread for every batch it writes. A key is checked
at most once every CHECK_EVERY seconds per process, but never skipped: a spend
inside the quiet period schedules one delayed check for its end.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)
CHECK_EVERY = 5.0
# After the broker failed, checks are not sent for this long: the writer
# thread sends them, and each try waits for the broker's timeouts.
BROKER_REST = 5.0

_due: dict[int, float] = {}  # key id -> when the next check may run
_scheduled: dict[int, float] = {}  # key id -> when an already queued check runs


class _Broker:
    down_until = 0.0


def alerts_check(batch) -> None:
    keys = {e.api_key_id for e in batch if e.reservation is not None and e.reservation.cost_micros}
    if not keys or time.monotonic() < _Broker.down_until:
        return  # a spend while the broker rests asks again after it
    from usage.tasks import check_budget_alerts

    now = time.monotonic()
    for key_id in keys:
        due = _due.get(key_id, 0.0)
        try:
            if now >= due:
                check_budget_alerts.apply_async(args=[key_id])
                _due[key_id] = now + CHECK_EVERY
            elif _scheduled.get(key_id, 0.0) < due:
                check_budget_alerts.apply_async(args=[key_id], countdown=due - now)
                _scheduled[key_id] = due
        except Exception:  # the broker is down: the next spend asks again
            log.warning("could not queue a budget check for key %s", key_id, exc_info=True)
            _Broker.down_until = time.monotonic() + BROKER_REST
            return
