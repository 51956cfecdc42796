"""The registry of phases: what runs, in which order, and in which order it is reported.

Each module here is one phase or family of phases and defines FAMILY
(harness.family.Family): the models and keys it needs, its warm-up, how it
runs (through Bench.pair or Bench.phase), its sections of the summary, its
targets and its rows of the table. Adding a phase is a new module and its
line in PHASES.
"""

from __future__ import annotations

from harness.family import Family
from harness.seed import KEYS, Key
from phases import (
    admission,
    balance,
    embeddings,
    flood,
    messages,
    metrics,
    nonstream,
    responses,
    slow,
    streams,
)

# The order they run in. A phase can inherit what the one before it left
# behind (usage records for PostgreSQL to write, worker memory): moving one
# can move its figures and its neighbours'.
PHASES: tuple[Family, ...] = (
    nonstream.FAMILY,
    admission.FAMILY,
    balance.FAMILY,
    metrics.FAMILY,
    streams.FAMILY,
    responses.FAMILY,
    embeddings.FAMILY,
    messages.FAMILY,
    slow.FAMILY,
    flood.FAMILY,
)

# The order of the summary and the table: the streaming rows right after the
# non-streaming ones, then the rest as they run.
_FIRST = (nonstream.FAMILY, streams.FAMILY)
REPORT: tuple[Family, ...] = (*_FIRST, *(f for f in PHASES if f not in _FIRST))


def selected(names: list[str] | None) -> tuple[Family, ...]:
    """The families `--phases` names, with those they require, in PHASES order;
    every family without it."""
    if not names:
        return PHASES
    by_name = {family.name: family for family in PHASES}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise SystemExit(f"unknown phase {', '.join(unknown)}; the phases are {', '.join(by_name)}")
    wanted: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted.add(name)
            todo.extend(by_name[name].requires)
    return tuple(family for family in PHASES if family.name in wanted)


def reported(families: tuple[Family, ...]) -> tuple[Family, ...]:
    """`families` in the order of the summary and the table."""
    return tuple(family for family in REPORT if family in families)


def models() -> dict[str, tuple[str, str]]:
    """Every phase's models: public id -> (upstream model, provider)."""
    return {public: route for family in PHASES for public, route in family.models.items()}


def kinds() -> dict[str, str]:
    """Every phase's models that are not chat models: public id -> kind."""
    return {public: kind for family in PHASES for public, kind in family.kinds.items()}


def keys() -> dict[str, Key]:
    return {**KEYS, **{name: key for family in PHASES for name, key in family.keys.items()}}
