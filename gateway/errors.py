"""Every error the /v1 surface can answer with.

Each class carries its HTTP status, OpenAI error `type` and `code`, and any extra
headers; `GatewayError.body()` is the one place that renders the OpenAI error
envelope. Nothing here may contain a secret or an upstream base URL.
"""

from __future__ import annotations


class GatewayError(Exception):
    status = 500
    type = "server_error"
    code: str | None = None
    # The HTTP status the upstream answered with, when this error is its answer.
    upstream_status: int | None = None

    def __init__(
        self,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}

    @property
    def recorded_as(self) -> str:
        """The usage record's error_type for this error."""
        return (self.code or self.type)[:64]

    def body(self) -> dict:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    status = 400
    type = "invalid_request_error"


class InvalidApiKey(InvalidRequest):
    status = 401
    code = "invalid_api_key"


class UnknownApiKey(InvalidApiKey):
    """No key of PureBridge's: none sent, not one's shape, or a lookup no key
    has. Such refusals concern no customer; their usage records are sampled
    (gateway/refusals.py). A real key's (disabled, expired, wrong secret) is
    an InvalidApiKey, recorded every time."""


class KeyRefused(InvalidApiKey):
    """The key is good but may not be used for this request: refused, and
    recorded as the key's (`key`: its KeyInfo), in its account's request log."""

    status = 403

    def __init__(self, message: str, *, key) -> None:
        super().__init__(message)
        self.key = key


class AccountOnHold(KeyRefused):
    """The key's account is on hold (a disputed payment: billing/reversals.py),
    until the hold is lifted."""

    code = "account_on_hold"


class IpNotAllowed(KeyRefused):
    """The key has an IP allowlist and the client's address is not on it."""

    code = "ip_not_allowed"


class ModelNotFound(InvalidRequest):
    status = 404
    code = "model_not_found"

    def __init__(self, model: str) -> None:
        super().__init__(
            f"The model `{model}` does not exist or you do not have access to it.", param="model"
        )
        self.model = model  # recorded as asked, so its owner sees what was mistyped


class UnknownUrl(InvalidRequest):
    status = 404
    code = "unknown_url"


class MethodNotAllowed(InvalidRequest):
    status = 405
    code = "method_not_allowed"


class RequestTooLarge(InvalidRequest):
    status = 413
    code = "request_too_large"


class RequestTimeout(InvalidRequest):
    status = 408
    code = "request_timeout"


class RateLimited(GatewayError):
    status = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"


class InsufficientQuota(GatewayError):
    """A budget, the quota or the balance (`window`: daily, monthly, total,
    balance) cannot cover the request. Clients see OpenAI's code; the record
    names the window ("insufficient_quota:balance"), for the console."""

    status = 429
    type = "insufficient_quota"
    code = "insufficient_quota"

    def __init__(self, message: str, *, window: str = "", **kwargs) -> None:
        headers = {"x-should-retry": "false", **kwargs.pop("headers", {})}
        super().__init__(message, headers=headers, **kwargs)
        self.window = window

    @property
    def recorded_as(self) -> str:
        return f"{self.code}:{self.window}" if self.window else str(self.code)


class UpstreamError(GatewayError):
    """The upstream failed or answered something that is not its API."""

    status = 502
    type = "upstream_error"
    code = "upstream_error"


class ServiceUnavailable(GatewayError):
    status = 503
    type = "service_unavailable"
    code = "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """PostgreSQL cannot answer what this request needs in time (gateway/db.py)."""

    def __init__(
        self, message: str = "PureBridge cannot reach its database right now; try again shortly."
    ) -> None:
        super().__init__(message, headers={"retry-after": "5"})


class UsageBacklog(ServiceUnavailable):
    """The usage writer holds as many records as it may (usage/recorder.py)."""

    def __init__(self) -> None:
        super().__init__(
            "PureBridge cannot record requests right now; try again shortly.",
            headers={"retry-after": "5"},
        )


class UpstreamTimeout(GatewayError):
    status = 504
    type = "timeout"
    code = "upstream_timeout"


class UpstreamRejected(GatewayError):
    """An upstream's own 4xx (context too long, bad parameter), passed through."""

    type = "invalid_request_error"

    def __init__(
        self, status: int, message: str, *, type: str | None, param: str | None, code: str | None
    ) -> None:
        super().__init__(message, param=param, code=code, status=status)
        if type:
            self.type = type
