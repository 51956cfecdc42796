"""The share of a purchase's credit each refund takes back: proportional to
what it refunds, exact in total, whatever order the refunds are seen in."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing.reversals import refund_shares
from billing.stripe_api import Refund


def refunds(amounts: list[int]) -> list[Refund]:
    return [
        Refund(id=f"re_{n}", amount=a, status="succeeded", created=n) for n, a in enumerate(amounts)
    ]


@given(
    credit=st.decimals(min_value="0.000001", max_value="100000", places=6),
    paid=st.integers(min_value=50, max_value=10_000_000),
    data=st.data(),
)
def test_refunds_seen_in_any_order_take_back_exactly_their_share(credit, paid, data):
    parts = data.draw(st.lists(st.integers(min_value=1, max_value=paid), min_size=1, max_size=6))
    batches = data.draw(st.permutations(range(len(parts))))
    seen: list[Refund] = []
    taken: dict[str, Decimal] = {}
    for n in batches:  # refunds appear one at a time, each event seeing all so far
        seen.append(refunds(parts)[n])
        for refund_id, share in refund_shares(credit, paid, seen, taken):
            assert share >= 0
            taken[refund_id] = share

    refunded = min(sum(parts), paid)
    exact = (credit * refunded / paid).quantize(Decimal("1e-12"))
    assert abs(sum(taken.values()) - exact) <= Decimal("1e-12")
    assert sum(taken.values()) <= credit
    assert set(taken) == {r.id for r in refunds(parts)}


def test_a_repeated_look_at_the_same_refunds_takes_nothing_more():
    seen = refunds([250])
    [(refund_id, share)] = refund_shares(Decimal("12.5"), 1000, seen, {})

    assert (refund_id, share) == ("re_0", Decimal("3.125"))
    assert refund_shares(Decimal("12.5"), 1000, seen, {refund_id: share}) == []
