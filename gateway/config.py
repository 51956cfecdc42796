"""Declarative configuration of providers and models (`manage.py loadconfig`).

Applying the same document twice changes nothing; providers and models that
the document does not name are left alone unless `prune` is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from gateway.models import CatalogModel, Provider, Route

PROVIDER_KEYS = {
    "name",
    "kind",
    "responses_api",
    "base_url",
    "api_key",
    "api_key_env",
    "enabled",
    "connect_timeout",
    "first_byte_timeout",
    "idle_timeout",
    "total_timeout",
}
MODEL_KEYS = {
    "id",
    "kind",
    "enabled",
    "owned_by",
    "input_per_mtok",
    "cached_input_per_mtok",
    "output_per_mtok",
    "cache_write_per_mtok",
    "default_max_output_tokens",
    "max_output_tokens",
    "routes",
}
ROUTE_KEYS = {"provider", "upstream_model", "priority", "weight", "enabled"}
TIMEOUTS = ("connect_timeout", "first_byte_timeout", "idle_timeout", "total_timeout")
PRICES = ("input_per_mtok", "cached_input_per_mtok", "output_per_mtok")


class ConfigError(Exception):
    """The document is wrong; the message says where and why."""


@dataclass
class ConfigReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def check_keys(where: str, entry: object, allowed: set[str], required: tuple[str, ...]) -> dict:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a table")
    unknown = set(entry) - allowed
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    for name in required:
        if name not in entry or entry[name] in ("", None):
            raise ConfigError(f"{where}: `{name}` is required")
    return entry


def decimal_value(where: str, value: object) -> Decimal:
    try:
        result = Decimal(str(value))
    except InvalidOperation:
        raise ConfigError(f"{where}: {value!r} is not a decimal number") from None
    if result < 0 or not result.is_finite():
        raise ConfigError(f"{where}: must be zero or more")
    if isinstance(value, float):
        raise ConfigError(f'{where}: write prices as strings ("1.25") so they stay exact')
    return result


def _provider_fields(where: str, entry: dict) -> dict:
    kind = entry.get("kind", "openai")
    if kind not in Provider.Kind.values:
        raise ConfigError(f"{where}: kind {kind!r} is not one of {', '.join(Provider.Kind.values)}")
    if "api_key" in entry and "api_key_env" in entry:
        raise ConfigError(f"{where}: give `api_key` or `api_key_env`, not both")
    api_key = entry.get("api_key", "")
    if "api_key_env" in entry:
        api_key = os.environ.get(entry["api_key_env"], "")
        if not api_key:
            raise ConfigError(f"{where}: environment variable {entry['api_key_env']} is not set")
    fields = {
        "kind": kind,
        "base_url": entry.get("base_url", ""),
        "enabled": bool(entry.get("enabled", True)),
        "responses_api": bool(entry.get("responses_api", False)),
    }
    if kind != Provider.Kind.ECHO and not fields["base_url"]:
        raise ConfigError(f"{where}: `base_url` is required for kind {kind!r}")
    for name in TIMEOUTS:
        if name in entry:
            value = entry[name]
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"{where}: `{name}` must be a positive number of seconds")
            fields[name] = float(value)
    return {"fields": fields, "api_key": api_key}


@transaction.atomic
def config_apply(document: dict, *, prune: bool = False) -> ConfigReport:
    report = ConfigReport()
    # [[plans]] are billing's (billing/config.py; loadconfig applies both).
    unknown = set(document) - {"providers", "models", "plans"}
    if unknown:
        raise ConfigError(f"unknown top-level table(s): {', '.join(sorted(unknown))}")
    providers = {}
    for i, entry in enumerate(document.get("providers", [])):
        where = f"providers[{i}]"
        entry = check_keys(where, entry, PROVIDER_KEYS, ("name",))
        providers[entry["name"]] = _apply_provider(where, entry, report)
    for i, entry in enumerate(document.get("models", [])):
        _apply_model(f"models[{i}]", entry, providers, report)
    if prune:
        # A provider the file's routes use stays even if the file does not declare it.
        names = {p.name for p in providers.values()} | {
            route.get("provider")
            for model in document.get("models", [])
            for route in model.get("routes") or ()
        }
        ids = {m["id"] for m in document.get("models", [])}
        for model in CatalogModel.objects.exclude(public_id__in=ids):
            report.removed.append(f"model {model.public_id}")
            model.delete()
        for provider in Provider.objects.exclude(name__in=names):
            report.removed.append(f"provider {provider.name}")
            provider.delete()
    return report


def _apply_provider(where: str, entry: dict, report: ConfigReport) -> Provider:
    parsed = _provider_fields(where, entry)
    provider = Provider.objects.filter(name=entry["name"]).first()
    label = f"provider {entry['name']}"
    if provider is None:
        provider = Provider(name=entry["name"], **parsed["fields"])
        provider.api_key = parsed["api_key"]
        save(where, provider)
        report.created.append(label)
        return provider
    changed = any(getattr(provider, k) != v for k, v in parsed["fields"].items())
    changed = changed or provider.api_key != parsed["api_key"]
    if changed:
        for k, v in parsed["fields"].items():
            setattr(provider, k, v)
        provider.api_key = parsed["api_key"]
        save(where, provider)
        report.updated.append(label)
    else:
        report.unchanged.append(label)
    return provider


def _apply_model(where: str, entry: object, providers: dict, report: ConfigReport) -> None:
    entry = check_keys(where, entry, MODEL_KEYS, ("id",))
    kind = entry.get("kind", CatalogModel.Kind.CHAT)
    if kind not in CatalogModel.Kind.values:
        raise ConfigError(
            f"{where}.kind: {kind!r} is not one of {', '.join(CatalogModel.Kind.values)}"
        )
    fields: dict = {
        "kind": kind,
        "enabled": bool(entry.get("enabled", True)),
        "owned_by": entry.get("owned_by", ""),
    }
    for name in PRICES:
        fields[name] = decimal_value(f"{where}.{name}", entry.get(name, "0"))
    cap = entry.get("default_max_output_tokens", 4096)
    if not isinstance(cap, int) or cap < 1:
        raise ConfigError(f"{where}.default_max_output_tokens: must be a whole number of 1 or more")
    fields["default_max_output_tokens"] = cap
    most = entry.get("max_output_tokens")
    if most is not None and (not isinstance(most, int) or isinstance(most, bool) or most < 1):
        raise ConfigError(f"{where}.max_output_tokens: must be a whole number of 1 or more")
    if most is not None and cap > most:
        raise ConfigError(
            f"{where}.default_max_output_tokens ({cap}) is above max_output_tokens ({most})"
        )
    fields["max_output_tokens"] = most
    fields["cache_write_per_mtok"] = (
        decimal_value(f"{where}.cache_write_per_mtok", entry["cache_write_per_mtok"])
        if "cache_write_per_mtok" in entry
        else None
    )
    routes = entry.get("routes") or []
    if not isinstance(routes, list) or not routes:
        raise ConfigError(f"{where}: at least one [[models.routes]] is required")
    wanted = []
    for j, route in enumerate(routes):
        rwhere = f"{where}.routes[{j}]"
        route = check_keys(rwhere, route, ROUTE_KEYS, ("provider", "upstream_model"))
        provider = (
            providers.get(route["provider"])
            or Provider.objects.filter(name=route["provider"]).first()
        )
        if provider is None:
            raise ConfigError(f"{rwhere}: no provider named {route['provider']!r}")
        weight = route.get("weight", 1)
        if not isinstance(weight, int) or weight < 1:
            raise ConfigError(f"{rwhere}: `weight` must be a whole number of 1 or more")
        wanted.append(
            (
                provider.id,
                route["upstream_model"],
                int(route.get("priority", j)),
                weight,
                bool(route.get("enabled", True)),
            )
        )
    targets = [(p, u) for p, u, *_ in wanted]
    if len(set(targets)) != len(targets):
        raise ConfigError(f"{where}: the same provider and upstream_model appear twice")
    model, created = CatalogModel.objects.get_or_create(public_id=entry["id"], defaults=fields)
    changed = not created and any(getattr(model, k) != v for k, v in fields.items())
    if changed:
        for k, v in fields.items():
            setattr(model, k, v)
        save(where, model)
    current = sorted(
        model.routes.values_list("provider_id", "upstream_model", "priority", "weight", "enabled")
    )
    if current != sorted(wanted):
        model.routes.all().delete()
        Route.objects.bulk_create(
            Route(model=model, provider_id=p, upstream_model=u, priority=pr, weight=w, enabled=en)
            for p, u, pr, w, en in wanted
        )
        # bulk_create sends no signals: tell the workers the catalogue changed.
        from gateway.invalidation import CATALOGUE, publish

        publish(CATALOGUE)
        changed = True
    label = f"model {entry['id']}"
    (report.created if created else report.updated if changed else report.unchanged).append(label)


def save(where: str, obj) -> None:
    try:
        obj.full_clean()
    except ValidationError as exc:
        details = "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
        raise ConfigError(f"{where}: {details}") from None
    obj.save()
