from __future__ import annotations

from django.db import models
from django.db.models.functions import Now

from accounts.models import Account
from keys.models import ApiKey


class UsageRecord(models.Model):
    """One /v1 request, successful or not. Written once, never updated."""

    created_at = models.DateTimeField(help_text="When the request arrived.")
    # The database's clock, not the writing host's: the rollup and the alert
    # sweep read the records by it (Watermark), and a host whose clock is off
    # must not hide its records from them.
    recorded_at = models.DateTimeField(
        db_default=Now(), db_index=True, help_text="When the database took the record."
    )
    # Null for requests refused before a key was identified (401).
    account = models.ForeignKey(Account, null=True, on_delete=models.PROTECT, related_name="+")
    # Records are never changed: a deleted key keeps its id here (no database
    # constraint), so its spend stays attributable.
    api_key = models.ForeignKey(
        ApiKey, null=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    endpoint = models.CharField(max_length=32)
    model = models.CharField(max_length=128, blank=True, help_text="Public model id.")
    provider = models.CharField(max_length=64, blank=True, help_text="Route used.")
    upstream_model = models.CharField(max_length=128, blank=True)
    stream = models.BooleanField(default=False)

    prompt_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    estimated = models.BooleanField(default=False, help_text="Tokens counted by PureBridge.")
    # Why: "usage_missing[:client_left|:upstream_failed]", "usage_invalid:<fields
    # replaced>", "clamped:<fields>" (values the database refused), see
    # gateway/reported.py.
    estimate_reason = models.CharField(max_length=200, blank=True)
    cost_usd = models.DecimalField(default=0, max_digits=24, decimal_places=12)

    status = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)

    request_id = models.CharField(max_length=64, unique=True)
    upstream_request_id = models.CharField(max_length=128, blank=True)
    client_request_id = models.CharField(max_length=512, blank=True)
    # Every route tried, in order: provider, upstream_model, status, error, ms.
    attempts = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        # The request log (usage/log.py) reads keyset pages newest first on
        # (created_at, id), so each index it walks ends in both. A filter that
        # keeps most records (2xx, streamed or not) walks the account's index
        # and skips the rest; one that keeps few (an error class, estimated, a
        # rarely used model) has an index of its own, or a page of it could
        # read millions of rows. Errors and estimates are partial indexes, a
        # fraction of the size; so is one key's errors (what a broken agent
        # is looked into by). A key's index needs no account: a key has one.
        # The three request ids: request_id is unique (its own index); the
        # upstream's and the client's are looked up within the account, and
        # records without one are left out of their index.
        indexes = [
            models.Index(fields=["account", "-created_at", "-id"], name="usage_account_recent"),
            models.Index(fields=["api_key", "-created_at", "-id"], name="usage_key_recent"),
            models.Index(
                fields=["account", "model", "-created_at", "-id"], name="usage_account_model"
            ),
            models.Index(
                fields=["account", "-created_at", "-id"],
                condition=models.Q(status__gte=400),
                name="usage_account_errors",
            ),
            models.Index(
                fields=["api_key", "-created_at", "-id"],
                condition=models.Q(status__gte=400),
                name="usage_key_errors",
            ),
            models.Index(
                fields=["account", "-created_at", "-id"],
                condition=models.Q(estimated=True),
                name="usage_account_estimated",
            ),
            models.Index(
                fields=["account", "upstream_request_id"],
                condition=~models.Q(upstream_request_id=""),
                name="usage_upstream_request_id",
            ),
            models.Index(
                fields=["account", "client_request_id"],
                condition=~models.Q(client_request_id=""),
                name="usage_client_request_id",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model} {self.status}"


class UsageCounters(models.Model):
    """What a rollup adds up for one account, key and model over one period.
    Latency and time to first token are kept as sums and counts, so averages
    over any number of periods are exact (an average of averages is not)."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    # A plain id, not a foreign key: the aggregate outlives a deleted key.
    api_key_id = models.BigIntegerField()
    model = models.CharField(max_length=128)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    reasoning_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(default=0, max_digits=24, decimal_places=12)
    latency_ms_sum = models.BigIntegerField(default=0)
    # Requests that reached a first token (streamed or not) and the sum of
    # their times to it.
    ttft_count = models.PositiveIntegerField(default=0)
    ttft_ms_sum = models.BigIntegerField(default=0)
    streamed = models.PositiveIntegerField(default=0)

    class Meta:
        abstract = True


class UsageHourly(UsageCounters):
    """Usage folded per account, key, model and UTC hour, for dashboards."""

    hour = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "account", "api_key_id", "model"], name="usage_hourly_unique"
            )
        ]
        indexes = [models.Index(fields=["account", "hour"], name="usage_hourly_account")]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H}:00 {self.model} key {self.api_key_id}"


class UsageDaily(UsageCounters):
    """Usage folded per account, key, model and calendar day in the account's
    time zone (the zone in UsageDailyZone), for ranges longer than two days."""

    day = models.DateField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "account", "api_key_id", "model"], name="usage_daily_unique"
            )
        ]
        indexes = [models.Index(fields=["account", "day"], name="usage_daily_account")]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} {self.model} key {self.api_key_id}"


class UsageDailyZone(models.Model):
    """The time zone an account's UsageDaily rows are days of. When the
    account's own zone differs (the user changed it), the rollup rebuilds the
    account's days in the new zone (usage/rollups.py)."""

    account = models.OneToOneField(
        Account, primary_key=True, on_delete=models.CASCADE, related_name="usage_daily_zone"
    )
    timezone = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"account {self.account_id}: {self.timezone}"


class BudgetAlert(models.Model):
    """One threshold of one budget window, crossed and mailed. The unique
    constraint is the claim: whoever inserts the row sends the email, so two
    workers, or one task run twice, send it once."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="budget_alerts")
    window = models.CharField(max_length=16)  # daily, monthly, total
    period = models.CharField(max_length=16)  # 2026-11-25, 2026-11, or "total"
    threshold = models.PositiveSmallIntegerField()  # percent: 50, 80, 100
    spent_usd = models.DecimalField(max_digits=24, decimal_places=12)
    limit_usd = models.DecimalField(max_digits=14, decimal_places=6)
    recipient = models.EmailField(blank=True)
    sent_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["api_key", "window", "period", "threshold"], name="budget_alert_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id} {self.window} {self.period} {self.threshold}%"


class SpendAnomaly(models.Model):
    """One episode of unusual spend of a key (usage/anomalies.py): opened by
    the hourly check that first finds the key far above its own baseline,
    ended by the first that finds it back within it. A key has at most one
    open episode: the partial unique constraint is the claim, and whoever
    opens the episode sends its one email."""

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="spend_anomalies")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    hour = models.DateTimeField(help_text="The start of the clock hour that opened the episode.")
    # That hour's figures, and the key's usual ones (medians of its active hours).
    spend_usd = models.DecimalField(max_digits=24, decimal_places=12)
    baseline_spend_usd = models.DecimalField(max_digits=24, decimal_places=12)
    requests = models.PositiveIntegerField()
    baseline_requests = models.DecimalField(max_digits=14, decimal_places=2)
    tokens_per_request = models.DecimalField(max_digits=14, decimal_places=2)
    baseline_tokens_per_request = models.DecimalField(max_digits=14, decimal_places=2)
    reasons = models.CharField(max_length=64)  # "spend,requests,tokens_per_request"
    recipient = models.EmailField(blank=True)
    opened_at = models.DateTimeField(auto_now_add=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-hour"]
        constraints = [
            models.UniqueConstraint(
                fields=["api_key"],
                condition=models.Q(ended_at__isnull=True),
                name="spend_anomaly_one_open",
            )
        ]
        # The banners read an account's open episodes on every overview.
        indexes = [
            models.Index(
                fields=["account"],
                condition=models.Q(ended_at__isnull=True),
                name="spend_anomaly_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.api_key_id} from {self.hour:%Y-%m-%d %H}:00"


class Watermark(models.Model):
    """How far a periodic job (the rollup, the budget alert sweep) has read the
    usage records: the database's time when its last completed run began
    reading. The next run reads records whose recorded_at is at most OVERLAP
    (usage/services.py) before it, for a writer's batch that was still being
    committed then. Saved in the run's own transaction, so a run that dies
    leaves it where it was and the next run reads its records again."""

    name = models.CharField(max_length=32, primary_key=True)
    position = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name} at {self.position:%Y-%m-%d %H:%M:%S}"


class RefusedTally(models.Model):
    """Requests refused for want of any PureBridge key (none, not one's shape,
    or a lookup no key has) beyond those recorded in full, counted per minute
    and client address by every web worker (gateway/refusals.py)."""

    minute = models.DateTimeField()
    # The client's address as the web server saw it; "*" for the addresses
    # past the most a worker tells apart in a minute.
    client = models.CharField(max_length=64)
    refused = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["-minute", "-refused"]
        constraints = [
            models.UniqueConstraint(fields=["minute", "client"], name="refused_tally_once")
        ]

    def __str__(self) -> str:
        return f"{self.minute:%Y-%m-%d %H:%M} {self.client} {self.refused}"
