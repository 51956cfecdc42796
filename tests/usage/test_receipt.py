"""One request's cost line by line (usage/pricing.py cost_lines, usage/receipt.py)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from usage.models import UsageRecord
from usage.pricing import cost_lines, cost_usd
from usage.receipt import ModelPrices, estimate_explained, receipt_for

prices = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False, allow_infinity=False)
tokens = st.integers(min_value=0, max_value=10_000_000)


@given(
    input_price=prices,
    cached_price=prices,
    output_price=prices,
    write_price=st.none() | prices,
    prompt=tokens,
    cached=tokens,
    written=tokens,
    completion=tokens,
)
def test_the_lines_add_up_to_exactly_what_is_charged(
    input_price, cached_price, output_price, write_price, prompt, cached, written, completion
):
    arguments = {
        "input_per_mtok": input_price,
        "cached_input_per_mtok": cached_price,
        "output_per_mtok": output_price,
        "cache_write_per_mtok": write_price,
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "cache_write_tokens": written,
        "completion_tokens": completion,
    }

    lines = cost_lines(**arguments)

    assert sum(line.cost_usd for line in lines) == cost_usd(**arguments)
    assert sum(line.tokens for line in lines if line.label != "Output") == prompt


def test_the_lines_are_input_cached_cache_writes_and_output():
    lines = cost_lines(
        input_per_mtok=Decimal(3),
        cached_input_per_mtok=Decimal("0.3"),
        output_per_mtok=Decimal(15),
        cache_write_per_mtok=Decimal("3.75"),
        prompt_tokens=10_000,
        cached_tokens=6_000,
        cache_write_tokens=3_000,
        completion_tokens=500,
    )

    assert [(line.label, line.tokens, line.cost_usd) for line in lines] == [
        ("Input", 1_000, Decimal("0.003")),
        ("Cached input", 6_000, Decimal("0.0018")),
        ("Cache writes", 3_000, Decimal("0.01125")),
        ("Output", 500, Decimal("0.0075")),
    ]


def test_kinds_with_no_tokens_are_left_out_but_input_and_output():
    lines = cost_lines(
        input_per_mtok=Decimal(1),
        cached_input_per_mtok=Decimal(1),
        output_per_mtok=Decimal(1),
        prompt_tokens=0,
        cached_tokens=0,
        completion_tokens=0,
    )

    assert [line.label for line in lines] == ["Input", "Output"]


def test_a_receipt_knows_whether_todays_prices_are_the_ones_charged():
    record = UsageRecord(prompt_tokens=1000, completion_tokens=100, cost_usd=Decimal("0.0025"))
    same = ModelPrices(input=Decimal("1.5"), cached_input=Decimal(0), output=Decimal(10))
    raised = ModelPrices(input=Decimal(3), cached_input=Decimal(0), output=Decimal(10))

    assert receipt_for(record, same).prices_unchanged
    assert not receipt_for(record, raised).prices_unchanged
    assert receipt_for(record, raised).lines_usd == Decimal("0.004")
    assert receipt_for(record, None).lines == []


def test_every_estimate_reason_is_explained_in_words():
    assert "disconnected" in estimate_explained("usage_missing:client_left")
    assert "upstream failed" in estimate_explained("usage_missing:upstream_failed")
    assert "never reported" in estimate_explained("usage_missing")
    assert "worker" in estimate_explained("usage_missing:worker_lost")
    invalid = estimate_explained("usage_invalid:prompt_tokens,completion_tokens")
    assert "(prompt_tokens, completion_tokens)" in invalid and "not believable" in invalid
    assert "(completion_tokens)" in estimate_explained("clamped:completion_tokens")
