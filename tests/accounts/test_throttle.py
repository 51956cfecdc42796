from accounts.throttle import (
    LIMIT,
    login_failure_record,
    login_failures_clear,
    login_is_throttled,
)


def test_failures_are_counted_per_email_and_address(email):
    for n in range(1, LIMIT + 1):
        assert not login_is_throttled(email=email, ip="192.0.2.1")
        assert login_failure_record(email=email, ip="192.0.2.1") == n

    assert login_is_throttled(email=email, ip="192.0.2.1")
    assert login_is_throttled(email=email.upper(), ip="192.0.2.1")
    assert not login_is_throttled(email=email, ip="192.0.2.2")
    assert not login_is_throttled(email="someone-else@example.com", ip="192.0.2.1")


def test_clearing_lifts_the_throttle(email):
    for _ in range(LIMIT):
        login_failure_record(email=email, ip="192.0.2.1")

    login_failures_clear(email=email, ip="192.0.2.1")

    assert not login_is_throttled(email=email, ip="192.0.2.1")


def test_the_counter_expires_with_its_window(email, monkeypatch):
    from accounts import throttle

    monkeypatch.setattr(throttle, "WINDOW_SECONDS", 1)
    for _ in range(LIMIT):
        login_failure_record(email=email, ip="192.0.2.1")

    import time

    time.sleep(1.2)
    assert not login_is_throttled(email=email, ip="192.0.2.1")
