from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from accounts.models import Account
from purebridge.text import has_control_characters

# Budgets and quotas: US dollars to the micro-dollar, the unit the gateway counts
# them in (gateway.limits.to_micros). Every form and command takes this precision.
USD_MAX_DIGITS = 14
USD_DECIMAL_PLACES = 6


def validate_key_name(name: str) -> None:
    """A key's name is shown in pages, emails (their subject) and logs: printable
    text only. Keys named before this check are still mailed (usage/emails.py
    puts the name on one line)."""
    if has_control_characters(name):
        raise ValidationError(
            "A key name cannot contain control characters such as line breaks or tabs.",
            code="control_characters",
        )


class ApiKey(models.Model):
    """An API key. Only a lookup prefix and a keyed hash of the secret are kept."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, validators=[validate_key_name])
    # The first characters of the random part: an indexed lookup that says
    # nothing useful about the rest; the match is the hash comparison.
    lookup = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    display_prefix = models.CharField(max_length=24)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    # Public model ids this key may use; empty means every enabled model.
    allowed_models = models.JSONField(default=list, blank=True)
    rpm_limit = models.PositiveIntegerField(null=True, blank=True)
    tpm_limit = models.PositiveIntegerField(null=True, blank=True)
    quota_usd = models.DecimalField(
        max_digits=USD_MAX_DIGITS, decimal_places=USD_DECIMAL_PLACES, null=True, blank=True
    )
    daily_budget_usd = models.DecimalField(
        max_digits=USD_MAX_DIGITS, decimal_places=USD_DECIMAL_PLACES, null=True, blank=True
    )
    monthly_budget_usd = models.DecimalField(
        max_digits=USD_MAX_DIGITS, decimal_places=USD_DECIMAL_PLACES, null=True, blank=True
    )
    notification_email = models.EmailField(blank=True)
    # Addresses and CIDR ranges the key may be used from (keys/networks.py),
    # normalised; empty means anywhere. JSON rather than an array: the
    # embedded default runs on SQLite.
    allowed_ips = models.JSONField(default=list, blank=True)

    # Rotation: the secret replaced by the last rotation keeps working until
    # previous_valid_until (the grace period), then never again. NULL rather
    # than "" when there is none: the column is unique.
    previous_lookup = models.CharField(  # noqa: DJ001
        max_length=16, unique=True, null=True, blank=True
    )
    previous_secret_hash = models.CharField(max_length=64, blank=True)
    previous_valid_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        # Every web worker asks for the keys changed lately, twice a TTL
        # (gateway/lookups.py): without it, a scan of every key each time.
        indexes = [models.Index(fields=["updated_at"], name="apikey_updated")]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix}…)"

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> ApiKey:
        instance = super().from_db(*args, **kwargs)
        instance._published_lookups = instance._lookups()
        return instance

    def _lookups(self) -> set[str]:
        # __dict__, not attributes: a deferred field must not cost a query here.
        return {v for v in (self.__dict__.get("lookup"), self.__dict__.get("previous_lookup")) if v}

    def lookups_changed(self) -> set[str]:
        """Every lookup a gateway cache may hold an entry for: the current ones
        and those this instance had when loaded or last saved (a rotation drops
        one). Remembers the current ones for the next save."""
        current = self._lookups()
        changed = getattr(self, "_published_lookups", set()) | current
        self._published_lookups = current
        return changed

    @property
    def previous_secret_valid(self) -> bool:
        return (
            bool(self.previous_lookup)
            and self.previous_valid_until is not None
            and self.previous_valid_until > timezone.now()
        )

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    @property
    def timezone(self) -> str:
        """The account's: a key's daily and monthly budgets follow its calendar."""
        return self.account.timezone

    @property
    def status(self) -> str:
        if not self.is_active:
            return "disabled"
        return "expired" if self.is_expired else "active"
