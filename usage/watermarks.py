"""How far a periodic job has read the usage records (usage.models.Watermark).

The position is the database's time when the job's last completed run began
reading, and a record's recorded_at is the database's time when it was
written: one clock, whatever the clocks of the hosts that wrote the records
(a record dated in the future by a host whose clock runs ahead moves no
watermark; one from a host whose clock runs behind is still read).

A record is stamped when its batch's COPY begins and seen by others only when
the batch commits, a moment later: a run re-reads OVERLAP before the position,
so a batch still being committed when the previous run read is read by this
one. Only a batch whose commit took longer than OVERLAP after its COPY began
could be missed; the next record of the same key and hour folds it in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.db.models.functions import Now

from usage.models import Watermark

OVERLAP = timedelta(minutes=5)
# Before any record: a job's first run reads them all.
BEGINNING = datetime(2000, 1, 1, tzinfo=UTC)


@contextmanager
def reading(job: str, *, since: datetime | None = None) -> Iterator[datetime]:
    """One run of `job`, in one transaction: yields the time to read records
    from (recorded_at, `since` if earlier) and, when the block ends without an
    exception, moves the watermark to the time this run began reading.

    The watermark row is locked for the run: a second run at the same time
    waits, then reads from where the first got to. A run that fails or is
    killed rolls back with everything it wrote, watermark included."""
    with transaction.atomic():
        Watermark.objects.get_or_create(name=job, defaults={"position": BEGINNING})
        position, now = (
            Watermark.objects.select_for_update()
            .filter(name=job)
            .annotate(now=Now())
            .values_list("position", "now")
            .get()
        )
        start = position - OVERLAP
        yield min(start, since) if since is not None else start
        Watermark.objects.filter(name=job).update(position=now)


def position(job: str) -> datetime | None:
    """Where `job`'s watermark stands (None: it never ran)."""
    return Watermark.objects.filter(name=job).values_list("position", flat=True).first()
