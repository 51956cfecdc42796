"""Alert emails sent once: the claim (a row a unique constraint guards) and
the sending share one transaction.

If sending fails (or the worker dies) the claim rolls back and the next check
sends again; a concurrent check waits on the unique row and then finds it
taken. An email can go twice only if the worker dies, or the commit fails,
between the email server taking the message and the commit: the SMTP session
is opened before the claim and closed (QUIT) after the commit, so that window
is the commit alone, and a server that fails to say goodbye sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction

log = logging.getLogger(__name__)
Claimed = TypeVar("Claimed")


def send_once(
    claim: Callable[[], Claimed | None], email: Callable[[Claimed], EmailMessage | None]
) -> bool:
    """Run `claim` (which inserts the unique row, or answers None when there is
    nothing to claim) and send what `email` makes of its result (None: nobody
    to tell, the claim stands). True when an email went out."""
    connection = get_connection()
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    claimed = claim()
            except IntegrityError:
                return False  # taken: this check's twin, or an earlier run
            if claimed is None:
                return False
            message = email(claimed)
            if message is None:
                return False
            message.connection = connection
            connection.open()
            message.send()
        return True
    finally:
        try:
            connection.close()
        except Exception:
            # After the commit the email is out and claimed; after a failure
            # that failure is the one worth raising.
            log.warning("closing the email connection failed", exc_info=True)
