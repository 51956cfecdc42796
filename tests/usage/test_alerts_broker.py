"""Budget checks are sent by the usage writer thread: a broker that fails (a
Redis that does not answer makes each try wait for its timeouts) is left to
rest for a while rather than tried for every batch."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from usage import alerts


@pytest.fixture
def sends(monkeypatch):
    tried: list[int] = []

    def apply_async(args, countdown=None):
        tried.append(args[0])
        raise TimeoutError("Timeout reading from socket")

    monkeypatch.setattr("usage.tasks.check_budget_alerts.apply_async", apply_async)
    monkeypatch.setattr(alerts, "_due", {})
    monkeypatch.setattr(alerts._Broker, "down_until", 0.0)
    return tried


def spend(key_id: int):
    return SimpleNamespace(api_key_id=key_id, reservation=SimpleNamespace(cost_micros=10))


def test_after_the_broker_fails_no_check_is_sent_while_it_rests(sends, monkeypatch):
    alerts.alerts_check([spend(1)])
    alerts.alerts_check([spend(2)])
    alerts.alerts_check([spend(3)])

    assert sends == [1]

    monkeypatch.setattr(alerts._Broker, "down_until", 0.0)  # rested
    alerts.alerts_check([spend(2)])

    assert sends == [1, 2]
