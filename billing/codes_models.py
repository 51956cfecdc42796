"""Redemption codes: batches the operator generates for a plan, the codes in
them (kept only as a keyed hash, like API keys) and each redemption.

Imported by billing.models, so Django registers them with the billing app.
Plans and ledger entries are named by string to keep this module free of an
import circle with billing.models.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.models import Account


class CodeBatch(models.Model):
    """Codes generated together for one plan (billing.codes.code_batch_create)."""

    plan = models.ForeignKey("billing.Plan", on_delete=models.PROTECT, related_name="code_batches")
    count = models.PositiveIntegerField()
    uses_per_code = models.PositiveIntegerField(default=1)
    redeem_by = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The codes' deadline; empty: no deadline. "
        "How long the credit then lasts is the plan's own validity.",
    )
    note = models.CharField(max_length=300, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "code batches"

    def __str__(self) -> str:
        return f"{self.count} × {self.plan} (batch {self.pk})"


class RedemptionCode(models.Model):
    """One code. Only its first group (the lookup) and an HMAC-SHA-256 of the
    whole code, keyed with the server's secret, are kept: never the code."""

    batch = models.ForeignKey(CodeBatch, on_delete=models.PROTECT, related_name="codes")
    # The first group of the code: an index to find the row by, and what the
    # operator and a customer can both read to tell codes apart. Not unique
    # (20 bits); the match is the hash comparison.
    lookup = models.CharField(max_length=8, db_index=True)
    code_hash = models.CharField(max_length=64, unique=True)
    uses_left = models.PositiveIntegerField()
    # Copied from the batch so that one code can be extended or cut short.
    redeem_by = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["batch", "id"]

    def __str__(self) -> str:
        return f"PB-{self.lookup}-…"


class Redemption(models.Model):
    """An account redeemed a code: the code's credit is `ledger_entry`.

    One account redeems a code once, even a code with several uses (the
    uses are for several accounts): the unique constraint says so, as does
    the entry's source, code:<code id>:<account id>."""

    code = models.ForeignKey(RedemptionCode, on_delete=models.PROTECT, related_name="redemptions")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    ledger_entry = models.OneToOneField(
        "billing.LedgerEntry", on_delete=models.PROTECT, related_name="redemption"
    )
    ip = models.CharField(max_length=45, blank=True, help_text="The client address it came from.")
    redeemed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-redeemed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["code", "account"], name="one_redemption_per_account")
        ]

    def __str__(self) -> str:
        return f"{self.code} by account {self.account_id}"
