"""Fixtures for the limits tests: a model catalogue whose costs are easy to
reckon, and the Redis that admission keeps its counters in."""

from __future__ import annotations

import pytest

from tests.limits.support import INPUT, MODELS, ODD_INPUT, ODD_MODELS, OUTPUT


@pytest.fixture
def models(make_model) -> dict:
    """Every model of MODELS at INPUT and OUTPUT prices, and of ODD_MODELS at ODD_INPUT."""
    made = {
        name: make_model(name, upstream, input=INPUT, output=OUTPUT)
        for name, upstream in MODELS.items()
    }
    for name, upstream in ODD_MODELS.items():
        made[name] = make_model(name, upstream, input=ODD_INPUT, output=OUTPUT)
    return made


@pytest.fixture
def redis_client():
    from purebridge.redis import sync_client

    return sync_client()
