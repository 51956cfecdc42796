from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from purebridge import crypto


class Provider(models.Model):
    """An upstream that PureBridge forwards requests to."""

    class Kind(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        ANTHROPIC = "anthropic", "Anthropic Messages API"
        ECHO = "echo", "Echo (built-in demo, no network)"

    name = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OPENAI)
    base_url = models.URLField(max_length=500, blank=True)
    api_key_encrypted = models.TextField(blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    responses_api = models.BooleanField(
        default=False,
        help_text="Speaks OpenAI's Responses API: /v1/responses is passed through "
        "instead of translated to chat completions.",
    )
    # Defaults suit reasoning models that think for minutes before the first token.
    connect_timeout = models.FloatField(default=10.0, validators=[MinValueValidator(0.1)])
    first_byte_timeout = models.FloatField(default=600.0, validators=[MinValueValidator(0.1)])
    idle_timeout = models.FloatField(
        default=300.0, validators=[MinValueValidator(0.1)], help_text="Longest gap between chunks."
    )
    total_timeout = models.FloatField(default=3600.0, validators=[MinValueValidator(0.1)])
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def api_key(self) -> str:
        return crypto.decrypt(self.api_key_encrypted)

    @api_key.setter
    def api_key(self, value: str) -> None:
        self.api_key_encrypted = crypto.encrypt(value)


class CatalogModel(models.Model):
    """A public PureBridge model id, priced per million tokens, served by routes."""

    class Kind(models.TextChoices):
        CHAT = "chat", "Chat (chat completions, Responses, text completions)"
        EMBEDDING = "embedding", "Embedding (/v1/embeddings)"

    public_id = models.CharField(max_length=128, unique=True)
    kind = models.CharField(
        max_length=16,
        choices=Kind.choices,
        default=Kind.CHAT,
        help_text="Which endpoints may use it: a request to the other kind's gets a 400.",
    )
    enabled = models.BooleanField(default=True)
    owned_by = models.CharField(max_length=64, blank=True)
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    cached_input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6, default=0)
    default_max_output_tokens = models.PositiveIntegerField(
        default=4096,
        help_text="The output cap reserved against budgets when a request sets none.",
    )
    max_output_tokens = models.PositiveIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text="The most output tokens a request may ask for (max_tokens and its "
        "siblings); empty means no limit of PureBridge's own.",
    )
    cache_write_per_mtok = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        help_text="Prompt-cache writes (Anthropic); empty means the input price.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["public_id"]
        verbose_name = "model"

    def __str__(self) -> str:
        return self.public_id

    def clean(self) -> None:
        most = self.max_output_tokens
        if most is not None and self.default_max_output_tokens > most:
            raise ValidationError(
                {"default_max_output_tokens": f"Must not be above the maximum output ({most})."}
            )


class Route(models.Model):
    """One way to serve a public model: a provider and its name for the model."""

    model = models.ForeignKey(CatalogModel, on_delete=models.CASCADE, related_name="routes")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="routes")
    upstream_model = models.CharField(max_length=128)
    priority = models.PositiveIntegerField(default=0, help_text="Lower is tried first.")
    weight = models.PositiveIntegerField(
        default=1,
        validators=[MinValueValidator(1)],
        help_text="Share of traffic among the routes of the same priority.",
    )
    enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["model", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["model", "provider", "upstream_model"], name="route_unique_target"
            )
        ]

    def __str__(self) -> str:
        return f"{self.model} → {self.provider}/{self.upstream_model}"
