"""The request fields that decide money, checked before admission.

Admission reserves a request's worst case from its prompt and its output cap,
so neither may be a value the upstream would reject or read differently: a
`max_tokens` of 0 or -100000, an `n` of 1,000 against a reservation of one
choice, a message whose content the prompt count cannot read. Sampling
parameters (`temperature`, `top_p`, ...) stay the upstream's to judge.
"""

from __future__ import annotations

from django.conf import settings

from gateway.catalogue import ModelConfig
from gateway.errors import InvalidRequest

CHAT_ROLES = frozenset(("system", "developer", "user", "assistant", "tool", "function"))
INPUT_ROLES = frozenset(("system", "developer", "user", "assistant"))


def model_id(body: dict) -> str:
    model = body.get("model")
    if model is None or model == "":
        raise InvalidRequest("You must provide a model parameter.", param="model")
    if not isinstance(model, str):
        raise InvalidRequest(
            f"'model' must be a string (a model id from GET /v1/models), "
            f"not {type(model).__name__ if not isinstance(model, bool) else 'a boolean'}.",
            param="model",
        )
    return model


def stream_flags(body: dict) -> tuple[bool, bool]:
    """`stream`, and whether the client asked for usage in it (`stream_options`)."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options")
    return bool(stream), bool(options and options.get("include_usage"))


def plain_input(body: dict, name: str) -> None:
    """An embeddings `input` or a text completion's `prompt`: a string, a list
    of strings, a token array or a list of token arrays (never empty)."""
    value = body.get(name)
    if isinstance(value, str):
        return
    shape = (
        f"'{name}' must be a string, an array of strings, an array of token ids "
        "or an array of arrays of token ids"
    )
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            f"{shape}, not {_kind(value) if value != [] else 'an empty array'}.", param=name
        )
    if all(isinstance(part, str) for part in value) or _token_ids(value):
        return
    for i, part in enumerate(value):
        if not (isinstance(part, list) and part and _token_ids(part)):
            raise InvalidRequest(
                f"{shape}: {name}[{i}] is {_kind(part)}, not a non-empty array of token ids.",
                param=f"{name}[{i}]",
            )


def _token_ids(values: list) -> bool:
    return all(type(v) is int and v >= 0 for v in values)


def whole_number(body: dict, name: str, *, most: int | None = None) -> int | None:
    """A positive integer field (absent or null: None), at most `most`."""
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise InvalidRequest(
            f"Invalid type for '{name}': expected an integer, but got {_kind(value)} instead.",
            param=name,
        )
    if value < 1:
        raise InvalidRequest(
            f"Invalid '{name}': integer below minimum value. Expected a value >= 1, "
            f"but got {value} instead.",
            param=name,
        )
    if most is not None and value > most:
        raise InvalidRequest(
            f"Invalid '{name}': {value} is more than this model allows ({most}).", param=name
        )
    return value


def output_caps(body: dict, model: ModelConfig, names: tuple[str, ...]) -> None:
    for name in names:
        whole_number(body, name, most=model.max_output_tokens)


def choices(body: dict) -> int:
    """`n`: how many answers the request asks for, each one reserved."""
    return whole_number(body, "n", most=settings.PUREBRIDGE_MAX_CHOICES) or 1


def chat_messages(messages: object) -> None:
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} must be an object.", param=where)
        _message(message, where, CHAT_ROLES)
        calls = message.get("tool_calls")
        if calls is not None and not (
            isinstance(calls, list) and all(isinstance(c, dict) for c in calls)
        ):
            raise InvalidRequest(
                f"{where}.tool_calls must be an array of objects.", param=f"{where}.tool_calls"
            )


def responses_input(body: dict) -> None:
    """`input` (a string or a list of items) and `instructions`."""
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise InvalidRequest("'instructions' must be a string.", param="instructions")
    raw = body.get("input")
    if raw is None or isinstance(raw, str):
        return
    if not isinstance(raw, list):
        raise InvalidRequest("'input' must be a string or an array of input items.", param="input")
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"{where} must be an object.", param=where)
        if "role" in item or item.get("type") == "message":
            _message(item, where, INPUT_ROLES)
        elif not isinstance(item.get("type"), str):
            raise InvalidRequest(f"{where} must have a 'type' or a 'role'.", param=where)


def _message(message: dict, where: str, roles: frozenset[str]) -> None:
    """A message's role (one of `roles`) and content."""
    role = message.get("role")
    if role not in roles:
        raise InvalidRequest(
            f"Invalid value for {where}.role: {_shown(role)}. Supported values are: "
            + ", ".join(sorted(f"'{r}'" for r in roles))
            + ".",
            param=f"{where}.role",
        )
    _content(message.get("content"), f"{where}.content")


def _content(content: object, where: str) -> None:
    # No content (an assistant turn that only calls tools; Codex sends some
    # items so) counts as none; the upstream judges whether it may be empty.
    if content is None or isinstance(content, str):
        return
    if isinstance(content, list) and all(
        isinstance(part, dict) and isinstance(part.get("type"), str) for part in content
    ):
        return
    raise InvalidRequest(
        f"Invalid type for '{where}': expected a string or an array of content parts "
        f"(objects with a 'type'), but got {_kind(content)} instead.",
        param=where,
    )


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _shown(value: object) -> str:
    return f"'{value}'" if isinstance(value, str) else _kind(value)
