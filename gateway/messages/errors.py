"""PureBridge's errors in the Anthropic Messages API's error shape, for
/v1/messages only: `{"type": "error", "error": {"type", "message"}}`, with
the HTTP status (and headers: Retry-After, x-should-retry) kept."""

from __future__ import annotations

from gateway.errors import GatewayError

# The error types Anthropic answers each status with (anthropic/types/shared).
TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    if status in TYPES:
        return TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def anthropic_error(error: GatewayError, request_id: str) -> dict:
    return {
        "type": "error",
        "error": {"type": error_type(error.status), "message": error.message},
        "request_id": request_id,
    }
