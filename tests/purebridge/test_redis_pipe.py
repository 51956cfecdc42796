"""The pipelined Redis connection of the request path, against a real Redis
(and, for the timeout, a loopback server that never answers)."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import pytest
import redis
from django.conf import settings
from redis.exceptions import ConnectionError, ResponseError, TimeoutError

from purebridge.redis import sync_client
from purebridge.redis_pipe import RedisPipe, Script
from tests.helpers import wait_for
from tests.limits.support import free_port


@pytest.fixture
async def pipe():
    connection = RedisPipe(settings.REDIS_URL, timeout=2.0)
    yield connection
    connection.close()


async def test_concurrent_commands_get_their_own_replies(pipe) -> None:
    key = "pb:test:pipe:counter"
    await pipe.execute("DEL", key)

    replies = await asyncio.gather(*(pipe.execute("INCR", key) for _ in range(200)))

    # Sent in this order on one connection, answered in the same order.
    assert replies == list(range(1, 201))
    assert await pipe.execute("SET", "pb:test:pipe:s", "x", "EX", 10) == b"OK"
    assert await pipe.execute("GET", "pb:test:pipe:s") == b"x"
    assert await pipe.execute("MGET", "pb:test:pipe:s", "pb:test:pipe:none") == [b"x", None]


async def test_an_error_reply_fails_one_command_only(pipe) -> None:
    await pipe.execute("SET", "pb:test:pipe:text", "not a number")
    first = pipe._connection

    with pytest.raises(ResponseError, match="not an integer"):
        await pipe.execute("INCR", "pb:test:pipe:text")

    assert await pipe.execute("PING") == b"PONG"
    assert pipe._connection is first  # the same connection carries on


async def test_a_script_redis_lost_is_loaded_again(pipe) -> None:
    script = Script("return {ARGV[1], KEYS[1], 42}")
    assert await pipe.evalsha(script, ["k"], ["a"]) == [b"a", b"k", 42]

    sync_client().script_flush()

    assert await pipe.evalsha(script, ["k2"], ["b"]) == [b"b", b"k2", 42]


async def test_a_killed_connection_fails_its_commands_and_the_next_reconnects(pipe) -> None:
    client_id = await pipe.execute("CLIENT", "ID")
    waiting = asyncio.ensure_future(pipe.execute("BLPOP", "pb:test:pipe:empty", 5))
    await asyncio.sleep(0.1)

    sync_client().client_kill_filter(_id=client_id)

    with pytest.raises(ConnectionError):
        await waiting
    assert await pipe.execute("PING") == b"PONG"
    assert await pipe.execute("CLIENT", "ID") != client_id


async def test_the_database_in_the_url_is_selected() -> None:
    parts = urlsplit(settings.REDIS_URL)
    url = urlunsplit(parts._replace(path="/5"))
    connection = RedisPipe(url)
    try:
        await connection.execute("SET", "pb:test:pipe:db", "five", "EX", 10)
    finally:
        connection.close()

    assert redis.Redis.from_url(url).get("pb:test:pipe:db") == b"five"
    assert sync_client().get("pb:test:pipe:db") is None


@pytest.fixture
async def silent_server():
    """A loopback server that accepts connections and never answers: its port,
    and the connections it accepted."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], accepted
    for writer in accepted:
        writer.close()
    server.close()
    await server.wait_closed()


async def ping_together(connection: RedisPipe, n: int) -> tuple[list, float]:
    """n PINGs at once: their results (or errors) and how long they took."""
    started = time.monotonic()
    try:
        results = await asyncio.gather(
            *(connection.execute("PING") for _ in range(n)), return_exceptions=True
        )
    finally:
        connection.close()
    return results, time.monotonic() - started


async def test_a_server_that_does_not_answer_times_out_every_waiting_command(
    silent_server,
) -> None:
    port, _ = silent_server

    results, elapsed = await ping_together(RedisPipe(f"redis://127.0.0.1:{port}/0", timeout=0.3), 3)

    assert all(isinstance(r, TimeoutError) for r in results), results
    assert 0.3 <= elapsed < 1.5


async def test_commands_waiting_for_a_connection_share_one_attempt(silent_server) -> None:
    """A Redis that accepts but never answers AUTH: every command waiting for
    the connection fails after one connect timeout, not one after another."""
    port, accepted = silent_server

    results, elapsed = await ping_together(
        RedisPipe(f"redis://:pw@127.0.0.1:{port}/0", connect_timeout=0.3), 8
    )

    assert all(isinstance(r, TimeoutError) for r in results), results
    assert len(accepted) == 1
    assert elapsed < 1.0  # 8 attempts in a row would take 2.4 s


async def test_an_idempotent_command_is_sent_again_when_its_connection_breaks(pipe) -> None:
    client_id = await pipe.execute("CLIENT", "ID")
    waiting = asyncio.ensure_future(pipe.execute_idempotent("BLPOP", "pb:test:pipe:empty", 0.5))
    await asyncio.sleep(0.1)

    sync_client().client_kill_filter(_id=client_id)

    assert await waiting is None  # answered on a new connection, not an error
    assert await pipe.execute("CLIENT", "ID") != client_id


def test_a_tls_option_the_pipe_cannot_honour_is_refused_when_it_is_made() -> None:
    with pytest.raises(ValueError, match="ssl_include_verify_flags"):
        RedisPipe("rediss://127.0.0.1:6380/0?ssl_include_verify_flags=VERIFY_X509_STRICT")


async def test_nothing_listening_is_a_connection_error() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()

    with pytest.raises(ConnectionError, match="cannot connect"):
        await RedisPipe(f"redis://127.0.0.1:{port}/0").execute("PING")


async def test_a_url_with_credentials_authenticates() -> None:
    admin = sync_client()
    admin.acl_setuser(
        "pb-pipe-test", enabled=True, passwords=["+s3cret"], keys="*", commands=["+@all"]
    )
    parts = urlsplit(settings.REDIS_URL)
    try:
        good = RedisPipe(urlunsplit(parts._replace(netloc=f"pb-pipe-test:s3cret@{parts.netloc}")))
        bad = RedisPipe(urlunsplit(parts._replace(netloc=f"pb-pipe-test:wrong@{parts.netloc}")))
        try:
            assert await good.execute("ACL", "WHOAMI") == b"pb-pipe-test"
            with pytest.raises(ResponseError, match="WRONGPASS"):
                await bad.execute("PING")
        finally:
            good.close()
            bad.close()
    finally:
        admin.acl_deluser("pb-pipe-test")


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory):
    """A redis-server of its own that speaks only TLS, with a certificate for
    127.0.0.1 signed by a test CA."""
    directory = tmp_path_factory.mktemp("redis-tls")
    ca_pem, cert_pem, key_pem = _certificates()
    (directory / "ca.pem").write_bytes(ca_pem)
    (directory / "cert.pem").write_bytes(cert_pem)
    (directory / "key.pem").write_bytes(key_pem)
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server",
            "--port", "0",
            "--tls-port", str(port),
            "--bind", "127.0.0.1",
            "--tls-cert-file", str(directory / "cert.pem"),
            "--tls-key-file", str(directory / "key.pem"),
            "--tls-ca-cert-file", str(directory / "ca.pem"),
            "--tls-auth-clients", "no",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        if not wait_for(lambda: _listening(port), timeout=10):
            raise RuntimeError("redis-server with TLS did not start")
        yield port, directory / "ca.pem"
    finally:
        process.terminate()
        process.wait(10)


async def test_rediss_verifies_the_servers_certificate(tls_redis) -> None:
    port, ca = tls_redis
    verified = RedisPipe(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}")
    unverified = RedisPipe(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none")
    unknown_ca = RedisPipe(f"rediss://127.0.0.1:{port}/0")
    try:
        assert await verified.execute("PING") == b"PONG"
        assert await unverified.execute("PING") == b"PONG"
        with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            await unknown_ca.execute("PING")
    finally:
        for connection in (verified, unverified, unknown_ca):
            connection.close()


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _certificates() -> tuple[bytes, bytes, bytes]:
    """A CA and a server certificate for 127.0.0.1 it signed (PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PureBridge test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), cert.public_bytes(pem), key_pem


def test_a_reply_a_busy_event_loop_has_not_read_yet_is_not_late() -> None:
    """uvloop (what uvicorn runs) fires due timers before it reads sockets: a
    loop busy past the timeout with other sockets' work finds Redis's reply
    waiting, unread. The timeout is Redis's to miss, not the loop's, so it can
    be short (REDIS_TIMEOUT)."""
    import socketserver
    import threading

    import uvloop

    class AnswerAfter100ms(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while self.request.recv(1024):
                time.sleep(0.1)
                self.request.sendall(b"+PONG\r\n")

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), AnswerAfter100ms)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    async def busy_while_redis_answers() -> bytes:
        loop = asyncio.get_running_loop()
        other, trigger = socket.socketpair()
        # Another socket's callback keeps the loop busy from 50 ms to 550 ms:
        # the reply comes at 100 ms, the timeout is 200 ms.
        loop.add_reader(other, lambda: (other.recv(1), time.sleep(0.5)))
        pipe = RedisPipe(f"redis://127.0.0.1:{port}/0", timeout=0.2)
        try:
            await pipe._connect()
            loop.call_later(0.05, trigger.send, b"x")
            return await pipe.execute("PING")
        finally:
            loop.remove_reader(other)
            pipe.close()

    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            assert runner.run(busy_while_redis_answers()) == b"PONG"
    finally:
        server.shutdown()
        server.server_close()
