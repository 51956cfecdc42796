from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """An id in the Responses API's style: resp_…, msg_…, fc_…"""
    return f"{prefix}_{secrets.token_hex(24)}"
