"""Retention: raw usage records older than PUREBRIDGE_USAGE_RETENTION_DAYS
are deleted, in bounded batches (each its own short transaction, read through
the recorded_at index), by an hourly beat task. Rollups are kept for good.

The boundary is a whole UTC hour, moved forward before anything is deleted
(the PURGED watermark, usage/spend.py): from then on every money sum reads
the rollups before it and the records after, so a figure is the same before,
during and after a purge. It is never moved past what the rollup has folded
(its watermark, less OVERLAP and a margin for records written late), and the
rollup never recomputes an hour before it (usage/services.py).
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models.functions import Now

from usage.models import UsageRecord, Watermark
from usage.spend import PURGED, purged_before
from usage.watermarks import OVERLAP, position

log = logging.getLogger(__name__)
BATCH = 5_000
# A record is written at most this long after its request arrived (the
# writer's backlog, a dead worker's journal recovered): deleting reads the
# records recorded before the boundary plus this.
LATE = timedelta(days=1)
RUN_SECONDS = 50.0  # one run stops deleting after this; the next goes on


def usage_purge(*, batch: int = BATCH, run_seconds: float = RUN_SECONDS) -> int:
    """Move the boundary to the retention cutoff (no further than the rollup
    has folded) and delete the raw records before it. Returns how many."""
    from usage.services import ROLLUP

    now = Watermark.objects.annotate(now=Now()).values_list("now", flat=True).first()
    folded = position(ROLLUP)
    if now is None or folded is None:
        return 0  # the rollup never ran: nothing is safe to delete
    cutoff = _hour(now - timedelta(days=settings.PUREBRIDGE_USAGE_RETENTION_DAYS))
    safe = _hour(folded - OVERLAP - LATE)
    if safe < cutoff:
        log.warning("usage retention waits for the rollup: it has folded up to %s", folded)
    boundary = min(cutoff, safe)
    current = purged_before()
    if current is None or boundary > current:
        Watermark.objects.update_or_create(name=PURGED, defaults={"position": boundary})
    else:
        boundary = current
    return _delete_before(boundary, batch, time.monotonic() + run_seconds)


def _delete_before(boundary: datetime, batch: int, deadline: float) -> int:
    deleted = 0
    while time.monotonic() < deadline:
        with transaction.atomic():
            ids = list(
                UsageRecord.objects.filter(recorded_at__lt=boundary + LATE, created_at__lt=boundary)
                .order_by("recorded_at")
                .values_list("id", flat=True)[:batch]
            )
            if not ids:
                break
            deleted += UsageRecord.objects.filter(id__in=ids).delete()[0]
    if deleted:
        log.info("usage retention deleted %d records created before %s", deleted, boundary)
    return deleted


def _hour(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)
