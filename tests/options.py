"""The fake upstreams' behaviour options, read from the model name after `?`."""

from urllib.parse import parse_qs


def options(model: str) -> dict[str, str]:
    _, _, query = model.partition("?")
    return {k: v[-1] for k, v in parse_qs(query).items()}
