"""The books: plans an account can buy, the append-only ledger of every credit
and debit, and the balance it adds up to.

Money is Decimal with the precision of usage costs (24 digits, 12 after the
point); Stripe's integer minor units appear only at the Stripe boundary and
integer micro-dollars only in the gateway's Redis counters.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from accounts.models import Account

# Redemption codes live in their own module; imported here to be billing models.
from billing.codes_models import CodeBatch, Redemption, RedemptionCode  # noqa: F401


def money(**options) -> models.DecimalField:
    """A USD amount with the precision of usage costs."""
    return models.DecimalField(max_digits=24, decimal_places=12, **options)


class Plan(models.Model):
    """What an account can buy with Stripe Checkout or be granted by a code."""

    name = models.SlugField(
        max_length=64, unique=True, help_text="The operator's name for it (loadconfig, makecodes)."
    )
    title = models.CharField(max_length=100, help_text="What customers see.")
    description = models.CharField(max_length=300, blank=True)
    price = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0.50"))],
        help_text="What the customer pays, in the plan's currency.",
    )
    currency = models.CharField(max_length=3, default="usd")
    credit_usd = money(
        validators=[MinValueValidator(Decimal("0.000001"))],
        help_text="The credit the plan adds to the balance, in USD.",
    )
    credit_valid_days = models.PositiveIntegerField(
        null=True, blank=True, help_text="Days the credit lasts; empty: it does not expire."
    )
    active = models.BooleanField(default=True, help_text="Offered on the billing page.")
    display_order = models.IntegerField(default=0)
    recommended = models.BooleanField(default=False, help_text="Shown with a badge.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["display_order", "price", "name"]

    def __str__(self) -> str:
        return self.title or self.name

    def clean(self) -> None:
        self.currency = (self.currency or "").lower()
        if len(self.currency) != 3 or not self.currency.isalpha():
            raise ValidationError({"currency": "A three-letter ISO currency code, e.g. usd."})


class Balance(models.Model):
    """An account's balance: a snapshot of its ledger, moved in the same
    transaction as each entry (billing.services.ledger_post)."""

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.PROTECT, related_name="balance"
    )
    amount_usd = money(default=0)
    # Its two sides, for the gateway: what was credited (net of refunds,
    # disputes and expiries) is the limit its usage counter is held to.
    credited_usd = money(default=0)
    used_usd = money(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.account_id}: {self.amount_usd}"


class LedgerEntry(models.Model):
    """One signed change of an account's balance. Entries are never changed
    or deleted; a unique `source` means the same event can post only once."""

    class Kind(models.TextChoices):
        PURCHASE = "purchase", "Purchase"
        REDEMPTION = "redemption", "Code redeemed"
        USAGE = "usage", "Usage"
        REFUND = "refund", "Refund"
        DISPUTE = "dispute", "Dispute"
        DISPUTE_RELEASE = "dispute_release", "Dispute won"
        EXPIRY = "expiry", "Credit expired"
        ADJUSTMENT = "adjustment", "Adjustment"

    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    amount_usd = money()
    balance_after_usd = money()
    source = models.CharField(max_length=200, unique=True)
    # What a person reads: a plan, a Stripe session or charge, a code's prefix.
    reference = models.CharField(max_length=200, blank=True)
    receipt_url = models.URLField(max_length=500, blank=True)
    reason = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField(null=True, blank=True, help_text="For credits that lapse.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["account", "-created_at"], name="ledger_account_time")]
        verbose_name_plural = "ledger entries"

    def __str__(self) -> str:
        return f"{self.source} {self.amount_usd}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError("Ledger entries are append-only: post a new entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Ledger entries are append-only: post a new entry instead.")
