"""Plans in the declarative configuration (`manage.py loadconfig`, `[[plans]]`).

Applying the same document twice changes nothing. With `prune`, a plan the
document does not name is deactivated, never deleted: purchases and codes
keep pointing at it.
"""

from __future__ import annotations

from decimal import Decimal

from billing.models import Plan
from gateway.config import ConfigError, ConfigReport, check_keys, decimal_value, save

PLAN_KEYS = {
    "name",
    "title",
    "description",
    "price",
    "currency",
    "credit_usd",
    "credit_valid_days",
    "active",
    "display_order",
    "recommended",
}


def plans_apply(entries: object, *, prune: bool, report: ConfigReport) -> None:
    if not isinstance(entries, list):
        raise ConfigError("plans: expected [[plans]] tables")
    names = []
    for i, entry in enumerate(entries):
        where = f"plans[{i}]"
        entry = check_keys(where, entry, PLAN_KEYS, ("name", "price", "credit_usd"))
        names.append(entry["name"])
        _apply_plan(where, entry, report)
    if len(set(names)) != len(names):
        raise ConfigError("plans: the same name appears twice")
    if prune:
        for plan in Plan.objects.exclude(name__in=names).filter(active=True):
            plan.active = False
            plan.save(update_fields=["active", "updated_at"])
            report.removed.append(f"plan {plan.name} (deactivated)")


def _apply_plan(where: str, entry: dict, report: ConfigReport) -> None:
    validity = entry.get("credit_valid_days")
    if validity is not None and (not isinstance(validity, int) or validity < 1):
        raise ConfigError(f"{where}.credit_valid_days: a whole number of days, 1 or more")
    order = entry.get("display_order", 0)
    if not isinstance(order, int):
        raise ConfigError(f"{where}.display_order: a whole number")
    fields = {
        "title": str(entry.get("title") or entry["name"]),
        "description": str(entry.get("description", "")),
        "price": decimal_value(f"{where}.price", entry["price"]),
        "currency": str(entry.get("currency", "usd")).lower(),
        "credit_usd": decimal_value(f"{where}.credit_usd", entry["credit_usd"]),
        "credit_valid_days": validity,
        "active": bool(entry.get("active", True)),
        "display_order": order,
        "recommended": bool(entry.get("recommended", False)),
    }
    plan = Plan.objects.filter(name=entry["name"]).first()
    label = f"plan {entry['name']}"
    if plan is None:
        save(where, Plan(name=entry["name"], **fields))
        report.created.append(label)
        return
    if all(_same(getattr(plan, k), v) for k, v in fields.items()):
        report.unchanged.append(label)
        return
    for k, v in fields.items():
        setattr(plan, k, v)
    save(where, plan)
    report.updated.append(label)


def _same(current: object, wanted: object) -> bool:
    if isinstance(current, Decimal) and isinstance(wanted, Decimal):
        return current.compare(wanted) == 0
    return current == wanted
