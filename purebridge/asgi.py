"""ASGI entry point: the /v1 gateway in front of Django.

gunicorn purebridge.asgi:application -k uvicorn_worker.UvicornWorker
"""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "purebridge.settings")

from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_application = get_asgi_application()

from purebridge.db import configure_web_process  # noqa: E402

# Before any connection: deadlines on every wait for PostgreSQL in this process.
configure_web_process()
if settings.PUREBRIDGE_SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_application = ASGIStaticFilesHandler(django_application)

from gateway.asgi import GatewayApp  # noqa: E402
from gateway.tokens import load_tokenizer  # noqa: E402
from purebridge.redis import check_url  # noqa: E402

check_url()

# Before gunicorn forks its workers (preload_app), so they share the tables.
load_tokenizer()
application = GatewayApp(django_application)

# What was imported so far lives as long as the process: move it out of the
# garbage collector's reach, so its collections walk only what requests
# allocate (and forked workers do not copy these pages by touching them).
gc.collect()
gc.freeze()
