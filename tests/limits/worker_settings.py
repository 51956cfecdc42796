"""Settings for the Celery workers these tests start: PureBridge's own, plus
EMAIL_FILE_PATH from the environment, which purebridge/settings.py does not
read (Django's file-based email backend cannot be used without it)."""

import os

from purebridge.settings import *  # noqa: F403

EMAIL_FILE_PATH = os.environ["EMAIL_FILE_PATH"]
