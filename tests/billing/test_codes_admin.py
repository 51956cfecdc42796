"""The operator makes codes with `manage.py makecodes` or the admin's
"Generate codes": shown (and offered as CSV) once, stored only as hashes."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import stat
from datetime import UTC, datetime, time, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from billing.codes import code_redeem
from billing.models import CodeBatch, Plan, RedemptionCode
from tests.web import csrf_token, form_data

SHAPE = re.compile(r"PB(-[0-9A-HJKMNP-TV-Z]{4}){4}")


def makecodes(*args: str) -> tuple[list[str], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("makecodes", *args, stdout=out, stderr=err)
    return out.getvalue().split(), err.getvalue()


def redeems(account, code: str) -> bool:
    return code_redeem(account=account, code=code, ip="192.0.2.50").ok


def test_makecodes_prints_codes_that_redeem(plan, make_account):
    codes, said = makecodes("--plan", "starter", "--count", "5", "--note", "newsletter")

    assert len(codes) == 5 and all(SHAPE.fullmatch(c) for c in codes)
    batch = CodeBatch.objects.get()
    assert (batch.plan, batch.count, batch.uses_per_code, batch.note) == (plan, 5, 1, "newsletter")
    assert batch.redeem_by is None and batch.created_by is None
    assert f"batch {batch.pk}: 5 codes for starter" in said
    assert all(redeems(make_account(), code) for code in codes)


def test_makecodes_sets_uses_and_the_redeem_by_day(plan):
    day = (timezone.now() + timedelta(days=30)).date().isoformat()

    makecodes("--plan", "starter", "--count", "2", "--uses", "5", "--redeem-by", day)

    end_of_day = datetime.combine(datetime.fromisoformat(day).date(), time.max, tzinfo=UTC)
    assert CodeBatch.objects.get().redeem_by == end_of_day
    assert {(c.uses_left, c.redeem_by) for c in RedemptionCode.objects.all()} == {(5, end_of_day)}


def test_makecodes_writes_a_new_csv_file_only_its_owner_can_read(plan, tmp_path, make_account):
    path = tmp_path / "codes.csv"

    printed, _ = makecodes("--plan", "starter", "--count", "3", "--csv", str(path))

    assert printed == []
    rows = list(csv.DictReader(path.open()))
    assert [r.keys() for r in rows][0] == {"code", "plan", "uses", "redeem_by", "batch"}
    assert {(r["plan"], r["uses"], r["redeem_by"]) for r in rows} == {("starter", "1", "")}
    assert redeems(make_account(), rows[0]["code"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with pytest.raises(CommandError, match="never written over"):
        makecodes("--plan", "starter", "--count", "3", "--csv", str(path))
    assert CodeBatch.objects.count() == 1


def test_makecodes_refuses_an_unknown_plan_and_names_the_plans(plan):
    with pytest.raises(CommandError, match=r"no plan named 'gold' \(plans: starter\)"):
        makecodes("--plan", "gold", "--count", "1")


@pytest.mark.parametrize(
    "args",
    [
        ("--count", "0"),
        ("--count", "10001"),
        ("--count", "2", "--uses", "0"),
        ("--count", "2", "--redeem-by", "2020-01-01"),
        ("--count", "2", "--redeem-by", "next week"),
    ],
)
def test_makecodes_refuses_bad_options(plan, args):
    with pytest.raises(CommandError):
        makecodes("--plan", "starter", *args)
    assert not CodeBatch.objects.exists()


def test_the_plan_action_leads_to_the_batch_form_with_the_plan_chosen(admin_client, plan):
    response = admin_client.post(
        "/admin/billing/plan/",
        {"action": "generate_codes", "_selected_action": [plan.pk]},
        headers={"X-CSRFToken": csrf_token(admin_client)},
    )

    assert response.status_code == 302
    assert response["Location"] == f"/admin/billing/codebatch/add/?plan={plan.pk}"
    page = admin_client.get(response["Location"]).content.decode()
    assert form_data(page, id="codebatch_form")["plan"] == [str(plan.pk)]


def test_the_admin_shows_new_codes_and_their_csv_once_and_keeps_only_hashes(
    admin_client, plan, make_account
):
    url = f"/admin/billing/codebatch/add/?plan={plan.pk}"
    data = form_data(admin_client.get(url).content.decode(), id="codebatch_form")
    data.update({"count": ["4"], "uses_per_code": ["2"], "note": ["conference"]})

    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    codes = re.findall(r"PB(?:-[0-9A-HJKMNP-TV-Z]{4}){4}", page)
    assert len(codes) == len(set(codes)) == 4
    href = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)" download="([^"]+)"', page)
    assert href is not None
    rows = list(csv.DictReader(io.StringIO(base64.b64decode(href.group(1)).decode())))
    assert [r["code"] for r in rows] == codes
    batch = CodeBatch.objects.get()
    assert href.group(2) == f"codes-starter-batch-{batch.pk}.csv"
    assert (batch.count, batch.uses_per_code, batch.created_by.email) == (4, 2, "admin@example.com")
    assert redeems(make_account(), codes[0])

    # Nowhere again: not on the batch's page, the lists, the admin's history.
    later = [
        f"/admin/billing/codebatch/{batch.pk}/change/",
        "/admin/billing/codebatch/",
        "/admin/billing/redemptioncode/",
        f"/admin/billing/codebatch/{batch.pk}/history/",
        "/admin/",
    ]
    for page_url in later:
        html = admin_client.get(page_url).content.decode()
        assert not any(code in html for code in codes), page_url
        assert "data:text/csv" not in html


def test_the_admin_refuses_a_redeem_by_date_that_has_passed(admin_client, plan):
    url = f"/admin/billing/codebatch/add/?plan={plan.pk}"
    data = form_data(admin_client.get(url).content.decode(), id="codebatch_form")
    data.update({"count": ["1"], "redeem_by_0": ["2020-01-01"], "redeem_by_1": ["00:00:00"]})

    response = admin_client.post(url, data)

    assert "This date has passed." in response.content.decode()
    assert not CodeBatch.objects.exists()


def test_a_pasted_code_finds_its_record_in_the_admin(admin_client, make_codes):
    first, second = make_codes(2)

    html = admin_client.get(
        "/admin/billing/redemptioncode/", {"q": second.lower()}
    ).content.decode()

    assert f"{second[:7]}-…" in html and f"{first[:7]}-…" not in html


def test_voiding_a_batch_stops_its_codes(admin_client, plan, account, make_codes):
    [code] = make_codes()
    batch = CodeBatch.objects.get()

    admin_client.post(
        "/admin/billing/codebatch/",
        {"action": "void_codes", "_selected_action": [batch.pk]},
        headers={"X-CSRFToken": csrf_token(admin_client)},
    )

    assert not redeems(account, code)


def test_a_plan_with_codes_cannot_be_deleted(plan, make_codes):
    from django.db.models import ProtectedError

    make_codes()
    with pytest.raises(ProtectedError):
        Plan.objects.filter(pk=plan.pk).delete()
