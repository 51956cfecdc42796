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
    # A credit was ever posted (a purchase, a code, an operator's adjustment):
    # with PUREBRIDGE_BILLING_MODE "unmetered", the gateway holds only such
    # accounts to their balance.
    ever_credited = models.BooleanField(default=False)
    # Set while a payment of the account is disputed (billing.stripe_reversals):
    # its API keys are refused until the dispute is closed.
    blocked_reason = models.CharField(max_length=200, blank=True)
    # The user's low-balance alert: an email when a debit takes the balance
    # below it (billing.alerts); empty: no alert.
    low_balance_alert_usd = models.DecimalField(
        max_digits=12, decimal_places=2, null=True, blank=True
    )
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


class LowBalanceAlert(models.Model):
    """One crossing of an account's low-balance threshold, mailed. The entry
    that took the balance below the threshold names the crossing, and the
    unique constraint is the claim: whoever inserts the row sends the email.
    A top-up and a new crossing is a new entry, so a new email."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    threshold_usd = models.DecimalField(max_digits=12, decimal_places=2)
    entry = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="+")
    recipient = models.CharField(max_length=254, blank=True)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["account", "threshold_usd", "entry"], name="low_balance_alert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.account_id} below {self.threshold_usd} at {self.entry_id}"


class Purchase(models.Model):
    """A plan bought through Stripe Checkout: made when the customer is sent to
    Stripe, credited once when Stripe says the session is paid
    (billing.checkout). Its account, plan, price and credit are fixed here
    when the session is made; nothing Stripe echoes back can change them."""

    class Status(models.TextChoices):
        OPEN = "open", "Waiting for payment"
        PROCESSING = "processing", "Payment processing"
        CREDITED = "credited", "Credited"
        FAILED = "failed", "Payment failed"
        EXPIRED = "expired", "Expired"
        REVIEW = "review", "Paid, amount differs: for the operator"

    session_id = models.CharField(max_length=255, unique=True)
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    plan = models.ForeignKey(Plan, on_delete=models.PROTECT, related_name="+")
    # In the currency's smallest unit, as Stripe counts it (cents for usd).
    amount_total = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    credit_usd = money()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    payment_intent_id = models.CharField(max_length=255, blank=True, db_index=True)
    charge_id = models.CharField(max_length=255, blank=True)
    receipt_url = models.URLField(max_length=500, blank=True)
    amount_refunded = models.PositiveBigIntegerField(default=0)
    ledger_entry = models.OneToOneField(
        LedgerEntry, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    credited_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The sweep of sessions whose webhook never came reads the unsettled
            # ones, least recently checked first.
            models.Index(
                fields=["updated_at"],
                name="purchase_unsettled",
                condition=models.Q(status__in=["open", "processing"]),
            )
        ]

    def __str__(self) -> str:
        return f"{self.session_id} {self.status}"

    @property
    def settled(self) -> bool:
        """Nothing more will happen to it but refunds and disputes."""
        return self.status not in (self.Status.OPEN, self.Status.PROCESSING)


class StripeDispute(models.Model):
    """A disputed payment of a purchase: while it is open the account is blocked."""

    dispute_id = models.CharField(max_length=255, unique=True)
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="disputes")
    amount = models.PositiveBigIntegerField()
    currency = models.CharField(max_length=3)
    status = models.CharField(max_length=40)
    reason = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.dispute_id} {self.status}"


class StripeEvent(models.Model):
    """Every verified webhook delivery, kept for audit. A redelivery of an
    event is skipped only when an earlier one was processed without error."""

    event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    deliveries = models.PositiveIntegerField(default=1)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_id} {self.type}"
