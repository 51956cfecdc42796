"""Admission (DESIGN.md hot-path step 4): rate limits, budgets and balance.

The limits-and-budgets work fills this in with one atomic Redis step per request;
until then every authenticated request for an allowed model is admitted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.accounting import Usage
    from gateway.auth import KeyInfo
    from gateway.catalogue import ModelConfig


async def admit(key: KeyInfo, model: ModelConfig, usage: Usage) -> None:
    return None
