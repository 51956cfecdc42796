"""An email backend for tests that kill a Celery worker mid-send: Django's file
backend, but each send first leaves a file `sending-<pid>-<n>` in the folder
above EMAIL_FILE_PATH and waits until a file `gate` appears there. A test
knows the send has begun, kills the worker, then opens the gate for the
next attempt."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.filebased import EmailBackend

_sends = itertools.count(1)


class GatedEmailBackend(EmailBackend):
    def send_messages(self, email_messages):
        folder = Path(settings.EMAIL_FILE_PATH).parent
        (folder / f"sending-{os.getpid()}-{next(_sends)}").touch()
        while not (folder / "gate").exists():
            time.sleep(0.02)
        return super().send_messages(email_messages)
