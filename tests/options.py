"""The fake upstreams' behaviour options, read from the model name after `?`."""

from urllib.parse import parse_qs

import orjson


def options(model: str) -> dict[str, str]:
    _, _, query = model.partition("?")
    return {k: v[-1] for k, v in parse_qs(query).items()}


def reported(opts: dict[str, str], name: str, default: int) -> object:
    """A usage count the fake reports: `name=N` as a number, or anything a
    lying upstream might send instead (`-5`, `1.5`, `null`, `many`)."""
    raw = opts.get(name)
    if raw is None:
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def total(*counts: object) -> object:
    """total_tokens as an upstream adds it up: None when the parts are not numbers."""
    numbers = [c for c in counts if isinstance(c, int | float) and not isinstance(c, bool)]
    return sum(numbers) if len(numbers) == len(counts) else None
