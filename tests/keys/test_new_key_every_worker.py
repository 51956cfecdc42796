"""A key works on its first request on every web worker, though each worker
refuses made-up keys from its own filter of the lookups that exist
(gateway/lookups.py): under gunicorn with two workers, as in production."""

from __future__ import annotations

import contextlib
import http.client
import os
import time
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from keys.services import key_rotate
from tests.helpers import USER_HI, made_up_key
from tests.limits.support import Gunicorn, gunicorn_in
from usage.models import UsageRecord


@pytest.fixture(scope="module")
def gunicorn(django_db_setup, tmp_path_factory):
    with gunicorn_in(tmp_path_factory, "gunicorn-keys") as server:
        yield server


def post(connection: http.client.HTTPConnection, secret: str, model: str) -> int:
    body = orjson.dumps({"model": model, "messages": USER_HI})
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    connection.request("POST", "/v1/chat/completions", body=body, headers=headers)
    response = connection.getresponse()
    response.read()
    return response.status


def worker_of(server: Gunicorn, connection: http.client.HTTPConnection) -> int | None:
    """The worker process holding the server's end of `connection`."""
    assert connection.sock is not None
    client_port = connection.sock.getsockname()[1]
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    inodes = {
        fields[9]
        for fields in (row.split() for row in rows)
        if int(fields[1].split(":")[1], 16) == server.port
        and int(fields[2].split(":")[1], 16) == client_port
    }
    for pid in server.worker_pids():
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return pid
    return None


@pytest.fixture
def one_connection_per_worker(gunicorn, transactional_db):
    """A kept-alive connection to each worker, each having refused a made-up
    key already (its filter in use)."""
    held: dict[int, http.client.HTTPConnection] = {}
    spare: list[http.client.HTTPConnection] = []
    try:
        for _ in range(200):
            connection = http.client.HTTPConnection("127.0.0.1", gunicorn.port, timeout=10)
            connection.request("GET", "/health")
            connection.getresponse().read()
            pid = worker_of(gunicorn, connection)
            if pid is not None and pid not in held:
                held[pid] = connection
            else:
                spare.append(connection)  # kept open: the next one may go elsewhere
            if len(held) == gunicorn.workers:
                break
        assert len(held) == gunicorn.workers, f"reached only workers {sorted(held)}"
        for connection in held.values():
            assert post(connection, made_up_key(), "flat") == 401
        yield list(held.values())
    finally:
        for connection in [*held.values(), *spare]:
            connection.close()
        records_settled()


def records_settled(timeout: float = 10) -> None:
    """Until the workers have written their usage records (none for 0.3 s):
    one in flight when the test's tables are emptied would deadlock with it."""
    counts = [-1]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and counts[-4:] != [counts[-1]] * 4:
        time.sleep(0.1)
        counts.append(UsageRecord.objects.count())


def test_a_new_key_works_on_its_first_request_on_every_worker(
    one_connection_per_worker, make_key, make_model
):
    make_model("flat", "fake?tokens=3")

    _, secret = make_key()

    assert [post(c, secret, "flat") for c in one_connection_per_worker] == [200, 200]


def test_a_rotated_keys_both_secrets_work_at_once_on_every_worker(
    one_connection_per_worker, make_key, make_model
):
    make_model("flat", "fake?tokens=3")
    key, old = make_key()

    _, new = key_rotate(api_key=key, grace=timedelta(hours=1))

    for connection in one_connection_per_worker:
        assert (post(connection, new, "flat"), post(connection, old, "flat")) == (200, 200)


def test_made_up_keys_are_refused_on_every_worker(one_connection_per_worker, make_model):
    make_model("flat", "fake?tokens=3")

    assert [post(c, made_up_key(), "flat") for c in one_connection_per_worker] == [401, 401]
