"""Real `celery -A purebridge worker` processes for the task tests, on the test
database, sending email to files (one file per connection; Workers.emails()
reads them all), on the test Redis or on a broker of a test's own."""

from __future__ import annotations

import email
import os
import re
import signal
import subprocess
from pathlib import Path

from django.conf import settings

from tests.helpers import celery_worker_command, database_url_for_tests, wait_for

ROOT = Path(__file__).resolve().parents[1]
FILE_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
GATED_BACKEND = "tests.gated_mail.GatedEmailBackend"


class Workers:
    def __init__(self, directory: Path, *, broker_url: str = "", mail_backend: str = FILE_BACKEND):
        self.directory = directory
        self.mail = directory / "mail"
        self.mail.mkdir()
        self.broker_url = broker_url or settings.REDIS_URL
        self.mail_backend = mail_backend
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self._app = None

    def start(self, count: int = 1, *, pool: str = "solo", env: dict | None = None) -> Workers:
        """`count` more workers (pool "solo": one process; "prefork": a parent
        and one pool process), started and ready."""
        environment = {
            **os.environ,
            "DATABASE_URL": database_url_for_tests(),
            "REDIS_URL": self.broker_url,
            "EMAIL_BACKEND": self.mail_backend,
            "EMAIL_FILE_PATH": str(self.mail),
            "PUREBRIDGE_CONSOLE_URL": settings.PUREBRIDGE_CONSOLE_URL,
            **(env or {}),
        }
        started = []
        for _ in range(count):
            n = len(self.processes)
            log = self.directory / f"worker-{n}.log"
            command = celery_worker_command(f"tests-{os.getpid()}-{n}", pool=pool)
            with log.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        command, cwd=ROOT, env=environment, stdout=out, stderr=subprocess.STDOUT
                    )
                )
            self.logs.append(log)
            started.append(log)
        ready = wait_for(lambda: all(" ready." in self._read(log) for log in started), 60)
        assert ready, self.tail()
        return self

    def send(self, name: str, *args) -> str:
        """Queue task `name` on the workers' broker, as beat or the web would;
        its id."""
        if self.broker_url == settings.REDIS_URL:
            from purebridge.celery import app

            return app.send_task(name, args=list(args)).id
        if self._app is None:
            from celery import Celery

            self._app = Celery("tests", broker=self.broker_url, set_as_current=False)
        return self._app.send_task(name, args=list(args)).id

    def _read(self, log: Path) -> str:
        return log.read_text(errors="replace") if log.exists() else ""

    def log_text(self) -> str:
        return "".join(self._read(log) for log in self.logs)

    def tail(self) -> str:
        return "\n".join(self._read(log)[-3000:] for log in self.logs)

    def results(self, task_ids: list[str]) -> dict[str, str]:
        """What each of these tasks returned, for those that have finished."""
        text = self.log_text()
        found = {}
        for task_id in task_ids:
            match = re.search(rf"\[{task_id}\] succeeded in [\d.]+s: (\S+)", text)
            if match:
                found[task_id] = match.group(1)
        return found

    def wait(self, task_ids: list[str], timeout: float = 30) -> dict[str, str]:
        done = wait_for(lambda: len(self.results(task_ids)) == len(task_ids), timeout=timeout)
        assert done, self.tail()
        return self.results(task_ids)

    def emails(self) -> list[email.message.Message]:
        messages = []
        for path in sorted(self.mail.iterdir()):
            for raw in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if raw.strip():
                    messages.append(email.message_from_bytes(raw.lstrip(b"\n")))
        return messages

    def sends_begun(self) -> int:
        """Sends the gated backend has begun (tests.gated_mail)."""
        return len(list(self.directory.glob("sending-*")))

    def open_gate(self) -> None:
        (self.directory / "gate").touch()

    def pool_processes(self, index: int = -1) -> list[int]:
        """The pids of a prefork worker's pool processes."""
        parent = self.processes[index].pid
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        return [int(pid) for pid in children]

    def kill(self, index: int = -1) -> None:
        """SIGKILL a worker (a solo one: its only process), as the OOM killer or
        a lost host would: it acknowledges nothing more."""
        process = self.processes[index]
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def kill_pool_process(self, index: int = -1) -> None:
        """SIGKILL the pool process of a prefork worker, mid-task; its parent
        lives on and starts another."""
        [pid] = self.pool_processes(index)
        os.kill(pid, signal.SIGKILL)
        worker = self.processes[index]
        assert wait_for(lambda: pid not in self._pool_or_none(worker), timeout=10)

    def _pool_or_none(self, worker: subprocess.Popen) -> list[int]:
        try:
            return self.pool_processes(self.processes.index(worker))
        except OSError:
            return []

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        if self._app is not None:
            self._app.close()


def waiting_on_a_lock() -> int:
    """How many database sessions of the test database wait on a lock."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]
