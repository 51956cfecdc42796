"""manage.py makecodes: generate a batch of redemption codes for a plan."""

from __future__ import annotations

import os
from argparse import ArgumentTypeError

from django.core.management.base import BaseCommand, CommandError

from billing.codes import MAX_BATCH, code_batch_create, codes_csv
from billing.models import Plan
from purebridge.cli import future_moment, positive_int

# Option types raise ArgumentTypeError: argparse then prints the usage and the
# message and exits 2, where a CommandError here would escape as a traceback.


def _count(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= MAX_BATCH:
        raise ArgumentTypeError(f"{value!r} is not a whole number from 1 to {MAX_BATCH}")
    return int(value)


class Command(BaseCommand):
    help = (
        "Generate redemption codes for a plan and print them, one a line (or write them "
        "as CSV with --csv). They are shown this once: PureBridge keeps only their hash."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--plan", required=True, help="the plan's name")
        parser.add_argument("--count", required=True, type=_count, help="how many codes")
        parser.add_argument("--uses", type=positive_int, default=1, help="accounts per code (1)")
        parser.add_argument(
            "--redeem-by", type=future_moment, help="the codes' deadline: ISO date or date-time"
        )
        parser.add_argument("--note", default="", help="for the operator: what they are for")
        parser.add_argument("--csv", metavar="FILE", help="write CSV to FILE (a new file)")

    def handle(self, *args, **options) -> None:
        try:
            plan = Plan.objects.get(name=options["plan"])
        except Plan.DoesNotExist:
            names = ", ".join(Plan.objects.values_list("name", flat=True)) or "none yet"
            raise CommandError(f"no plan named {options['plan']!r} (plans: {names})") from None
        note = options["note"].strip()
        if len(note) > 300:
            raise CommandError("--note is at most 300 characters")
        # The file is opened first: codes made but not written would be lost.
        out = self._open_new(options["csv"]) if options["csv"] else None
        try:
            batch, codes = code_batch_create(
                plan=plan,
                count=options["count"],
                uses=options["uses"],
                redeem_by=options["redeem_by"],
                note=note,
            )
        except BaseException:
            if out is not None:
                out.close()
                os.remove(options["csv"])
            raise
        if out is not None:
            with out:
                out.write(codes_csv(batch, codes))
            self.stderr.write(f"wrote {len(codes)} codes to {options['csv']}")
        else:
            for code in codes:
                self.stdout.write(code)
        self.stderr.write(
            f"batch {batch.pk}: {len(codes)} codes for {plan.name}, "
            f"{batch.uses_per_code} use(s) each, redeem by {batch.redeem_by or 'no deadline'}"
        )

    def _open_new(self, path: str):
        """A file that did not exist, readable by its owner only: it holds the codes."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise CommandError(f"{path} exists: codes are never written over a file") from None
        except OSError as error:
            raise CommandError(f"cannot write {path}: {error.strerror}") from None
        return os.fdopen(fd, "w", encoding="utf-8", newline="")
