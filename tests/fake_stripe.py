"""A fake Stripe: a real HTTP server on loopback that the real `stripe` package
talks to (its client's API base pointed here), for Checkout flows.

localstripe has no Checkout Sessions, Prices or checkout.*/charge.* events,
so PureBridge ships its own, as small as its billing needs. It speaks
Stripe's v1 wire format: form-encoded parameters with bracketed keys
(`line_items[0][price_data][unit_amount]=1000`), `expand[]`, JSON objects
with an `object` field, list objects, errors as `{"error": {...}}`, and
`Idempotency-Key` (the same key and parameters answer the same session
again; the same key with other parameters is a 400 idempotency_error).

    POST /v1/checkout/sessions               create (mode=payment, price_data line items)
    GET  /v1/checkout/sessions/{id}          retrieve (expand payment_intent.latest_charge)
    GET  /v1/checkout/sessions?payment_intent=pi_...   list
    POST /v1/checkout/sessions/{id}/expire   expire an open session
    GET  /v1/payment_intents/{id}, /v1/charges/{id}, /v1/disputes/{id}
    GET  /v1/refunds?payment_intent=pi_...   (or charge=ch_...)
    GET  /pay/{session}                      the hosted checkout page: a Pay button that
                                             completes the session, delivers
                                             checkout.session.completed to the webhook (unless
                                             `deliver_on_pay` is off) and redirects to
                                             success_url
    GET  /receipts/{charge}                  a receipt page (each charge's receipt_url)

Test controls (methods; each changes the state as Stripe would and returns
the event Stripe would send, without sending it): `complete` (paid, or
unpaid for a payment method that settles later), `async_succeed`,
`async_fail`, `expire`, `refund` (full or partial), `dispute`,
`close_dispute` (won or lost). `deliver` POSTs an event to the webhook
signed with Stripe's scheme (`Stripe-Signature: t=<unix time>,v1=<hex
HMAC-SHA256 of "<t>.<body>" keyed with the endpoint secret>`), or with a
wrong secret, an old timestamp, no signature or a body altered after
signing; `redeliver` sends a past event again, and events may be delivered
in any order. `altered` copies an event with fields of its object changed
(a forged event, signed as if Stripe had sent it). `outage` makes the API
answer 500; `settle` waits for the deliveries the hosted page started. Run standalone with `python -m tests.fake_stripe --port 9200
--webhook-url http://127.0.0.1:8000/billing/stripe/webhook`.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import hashlib
import hmac
import html
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx2
from aiohttp import web

from tests.loopback import LoopbackServer

API_KEY = "sk_test_purebridge_fake"
WEBHOOK_SECRET = "whsec_purebridge_fake_secret"
API_VERSION = "2026-10-28.endive"
_KEY_PART = re.compile(r"[^\[\]]+")
_PARAMS = web.RequestKey("params", dict)


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe sends with `payload`."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256)
    return f"t={t},v1={mac.hexdigest()}"


def unflatten(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Stripe's bracketed form keys as nested objects (`a[0][b]=1` → {"a": [{"b": "1"}]})."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = _KEY_PART.findall(key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


class StripeError(Exception):
    def __init__(self, status: int, kind: str, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.code = status, kind, message, code


class FakeStripe(LoopbackServer):
    thread_name = "fake-stripe"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str = API_KEY,
        webhook_secret: str = WEBHOOK_SECRET,
    ) -> None:
        self.host, self.port = host, port
        self.api_key, self.webhook_secret = api_key, webhook_secret
        self.webhook_url: str | None = None
        self._lock = threading.RLock()
        self._sender = ThreadPoolExecutor(4, thread_name_prefix="fake-stripe-webhook")
        self._clock = itertools.count(int(time.time()))
        self.reset_state()
        self.app = web.Application(middlewares=[self._errors])
        route = self.app.router
        route.add_post("/v1/checkout/sessions", self._create_session)
        route.add_get("/v1/checkout/sessions", self._list_sessions)
        route.add_get("/v1/checkout/sessions/{id}", self._get("sessions"))
        route.add_post("/v1/checkout/sessions/{id}/expire", self._expire_session)
        route.add_get("/v1/payment_intents/{id}", self._get("payment_intents"))
        route.add_get("/v1/charges/{id}", self._get("charges"))
        route.add_get("/v1/disputes/{id}", self._get("disputes"))
        route.add_get("/v1/refunds", self._list_refunds)
        route.add_get("/pay/{id}", self._pay_page)
        route.add_post("/pay/{id}", self._pay)
        route.add_get("/receipts/{id}", self._receipt)

    def reset_state(self) -> None:
        with self._lock:
            self.sessions: dict[str, dict] = {}
            self.payment_intents: dict[str, dict] = {}
            self.charges: dict[str, dict] = {}
            self.refunds: dict[str, dict] = {}
            self.disputes: dict[str, dict] = {}
            self.events: list[dict] = []
            self.requests: list[dict] = []  # method, path, headers, params of each API call
            self._idempotent: dict[str, tuple[str, dict]] = {}  # key: parameters, answer
            self._intent_metadata: dict[str, dict] = {}
            self.outage = False
            self.deliver_on_pay = True
            self.deliveries: list[int] = []  # statuses the webhook answered, in order
            self._sending: list[Future] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # Test controls: Stripe's side of a payment's life.

    def complete(self, session_id: str, *, paid: bool = True) -> dict:
        """The customer finished the checkout: paid by card, or (paid=False) by a
        method that settles later (the payment is then `processing`)."""
        with self._lock:
            session = self.sessions[session_id]
            assert session["status"] == "open", f"{session_id} is {session['status']}"
            intent = {
                "id": self._id("pi"),
                "object": "payment_intent",
                "amount": session["amount_total"],
                "currency": session["currency"],
                "status": "processing",
                "latest_charge": None,
                "metadata": dict(self._intent_metadata.get(session_id, {})),
                "created": self._now(),
                "livemode": False,
            }
            self.payment_intents[intent["id"]] = intent
            session.update(status="complete", url=None, payment_intent=intent["id"])
            if paid:
                self._charge(session, intent)
            return self.make_event("checkout.session.completed", session)

    def async_succeed(self, session_id: str) -> dict:
        with self._lock:
            session = self.sessions[session_id]
            self._charge(session, self.payment_intents[session["payment_intent"]])
            return self.make_event("checkout.session.async_payment_succeeded", session)

    def async_fail(self, session_id: str) -> dict:
        with self._lock:
            session = self.sessions[session_id]
            self.payment_intents[session["payment_intent"]]["status"] = "requires_payment_method"
            return self.make_event("checkout.session.async_payment_failed", session)

    def expire(self, session_id: str) -> dict:
        with self._lock:
            session = self.sessions[session_id]
            if session["status"] != "open":
                raise StripeError(400, "invalid_request_error", "only an open session expires")
            session.update(status="expired", url=None)
            return self.make_event("checkout.session.expired", session)

    def refund(self, session_id: str, amount: int | None = None) -> dict:
        """Refund `amount` (default: what is left) of the session's payment."""
        with self._lock:
            charge = self._charge_of(session_id)
            left = charge["amount"] - charge["amount_refunded"]
            amount = left if amount is None else amount
            assert 0 < amount <= left, f"cannot refund {amount} of {left}"
            refund = {
                "id": self._id("re"),
                "object": "refund",
                "amount": amount,
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "currency": charge["currency"],
                "status": "succeeded",
                "created": self._now(),
            }
            self.refunds[refund["id"]] = refund
            charge["amount_refunded"] += amount
            charge["refunded"] = charge["amount_refunded"] == charge["amount"]
            return self.make_event("charge.refunded", charge)

    def dispute(self, session_id: str, amount: int | None = None) -> dict:
        with self._lock:
            charge = self._charge_of(session_id)
            dispute = {
                "id": self._id("dp"),
                "object": "dispute",
                "amount": charge["amount"] - charge["amount_refunded"]
                if amount is None
                else amount,
                "charge": charge["id"],
                "payment_intent": charge["payment_intent"],
                "currency": charge["currency"],
                "status": "needs_response",
                "reason": "fraudulent",
                "created": self._now(),
                "livemode": False,
            }
            self.disputes[dispute["id"]] = dispute
            charge["disputed"] = True
            return self.make_event("charge.dispute.created", dispute)

    def close_dispute(self, dispute_id: str, *, won: bool) -> dict:
        with self._lock:
            dispute = self.disputes[dispute_id]
            dispute["status"] = "won" if won else "lost"
            return self.make_event("charge.dispute.closed", dispute)

    def update_session(self, session_id: str, **fields: Any) -> None:
        """Change a session's fields as stored (what a retrieve answers)."""
        with self._lock:
            self.sessions[session_id].update(fields)

    def altered(self, event: Mapping, kind: str | None = None, **fields: Any) -> dict:
        """A new event like `event` (of type `kind`, if given) whose object has
        `fields` changed."""
        with self._lock:
            forged = copy.deepcopy(dict(event))
            forged["id"] = self._id("evt")
            forged["type"] = kind or forged["type"]
            forged["data"]["object"].update(fields)
            self.events.append(forged)
            return forged

    def event(self, event_id: str) -> dict:
        with self._lock:
            return next(e for e in self.events if e["id"] == event_id)

    def only_session(self) -> dict:
        with self._lock:
            [session] = self.sessions.values()
            return session

    # Delivery to the webhook.

    def deliver(
        self,
        event: Mapping,
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        signed: bool = True,
        alter: bool = False,
    ) -> httpx2.Response:
        """POST `event` to the webhook as Stripe does; `alter` changes one byte
        of the body after it was signed."""
        assert self.webhook_url, "set webhook_url first"
        payload = json.dumps(event, indent=2).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        }
        if signed:
            headers["Stripe-Signature"] = sign(payload, secret or self.webhook_secret, timestamp)
        if alter:  # the last character of the event's id: still JSON, no longer signed
            at = payload.index(b'"', payload.index(b'"evt_') + 1) - 1
            payload = (
                payload[:at] + (b"0" if payload[at : at + 1] != b"0" else b"1") + payload[at + 1 :]
            )
        answer = httpx2.post(self.webhook_url, content=payload, headers=headers, timeout=30)
        with self._lock:
            self.deliveries.append(answer.status_code)
        return answer

    def redeliver(self, event_id: str) -> httpx2.Response:
        return self.deliver(self.event(event_id))

    def settle(self, timeout: float = 30) -> None:
        """Wait for the deliveries the hosted page started (a test's end)."""
        with self._lock:
            sending, self._sending = self._sending, []
        for delivery in sending:
            delivery.result(timeout)

    # The API.

    @web.middleware
    async def _errors(self, request: web.Request, handler) -> web.StreamResponse:
        api = request.path.startswith("/v1/")
        try:
            if api:
                await self._authenticate(request)
            return await handler(request)
        except StripeError as exc:
            error = {"type": exc.kind, "message": exc.message}
            if exc.code:
                error["code"] = exc.code
            # Stripe-Should-Retry: false keeps the client from retrying a fault on purpose.
            return web.json_response(
                {"error": error},
                status=exc.status,
                headers={"Request-Id": self._id("req"), "Stripe-Should-Retry": "false"},
            )

    async def _authenticate(self, request: web.Request) -> None:
        params = unflatten(request.query.items())
        if request.method == "POST":
            params.update(unflatten((await request.post()).items()))
        with self._lock:
            self.requests.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "headers": dict(request.headers),
                    "params": params,
                }
            )
            if self.outage:
                raise StripeError(500, "api_error", "fake outage")
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            raise StripeError(401, "invalid_request_error", "Invalid API Key provided")
        request[_PARAMS] = params

    def _get(self, store: str):
        async def get(request: web.Request) -> web.Response:
            with self._lock:
                found = getattr(self, store).get(request.match_info["id"])
                if found is None:
                    raise StripeError(
                        404, "invalid_request_error", "No such object", code="resource_missing"
                    )
                return self._json(self._expanded(found, request[_PARAMS].get("expand", [])))

        return get

    async def _create_session(self, request: web.Request) -> web.Response:
        params = request[_PARAMS]
        key = request.headers.get("Idempotency-Key", "")
        body = json.dumps(params, sort_keys=True)
        with self._lock:
            if key in self._idempotent:
                earlier, answered = self._idempotent[key]
                if earlier != body:
                    raise StripeError(
                        400,
                        "idempotency_error",
                        "Keys for idempotent requests can only be used with the same parameters",
                    )
                return self._json(answered, replayed=True)  # the first answer, as it was
            session = self._new_session(params)
            if key:
                self._idempotent[key] = (body, copy.deepcopy(session))
            return self._json(session)

    def _new_session(self, params: dict) -> dict:
        if params.get("mode") != "payment":
            raise StripeError(400, "invalid_request_error", "mode must be payment here")
        items = params.get("line_items") or []
        if not items:
            raise StripeError(400, "invalid_request_error", "line_items is required")
        currencies = {item["price_data"]["currency"] for item in items}
        if len(currencies) != 1:
            raise StripeError(400, "invalid_request_error", "one currency per session")
        total = sum(
            int(item["price_data"]["unit_amount"]) * int(item.get("quantity", 1)) for item in items
        )
        session_id = self._id("cs_test")
        session = {
            "id": session_id,
            "object": "checkout.session",
            "mode": "payment",
            "status": "open",
            "payment_status": "unpaid",
            "amount_subtotal": total,
            "amount_total": total,
            "currency": currencies.pop(),
            "client_reference_id": params.get("client_reference_id"),
            "customer_email": params.get("customer_email"),
            "metadata": params.get("metadata") or {},
            "payment_intent": None,
            "success_url": params["success_url"],
            "cancel_url": params.get("cancel_url"),
            "url": f"{self.base_url}/pay/{session_id}",
            "created": self._now(),
            "expires_at": self._now() + 86400,
            "livemode": False,
        }
        self.sessions[session_id] = session
        self._intent_metadata[session_id] = (params.get("payment_intent_data") or {}).get(
            "metadata"
        ) or {}
        return session

    async def _list_sessions(self, request: web.Request) -> web.Response:
        wanted = request[_PARAMS].get("payment_intent")
        with self._lock:
            found = [s for s in self.sessions.values() if s["payment_intent"] == wanted]
            return self._json(self._list("/v1/checkout/sessions", found))

    async def _expire_session(self, request: web.Request) -> web.Response:
        event = self.expire(request.match_info["id"])
        return self._json(event["data"]["object"])

    async def _list_refunds(self, request: web.Request) -> web.Response:
        params = request[_PARAMS]
        with self._lock:
            found = [
                r
                for r in self.refunds.values()
                if r["payment_intent"] == params.get("payment_intent", r["payment_intent"])
                and r["charge"] == params.get("charge", r["charge"])
            ]
            # Newest first, as Stripe lists them, those of one second included.
            found.sort(key=lambda r: r["created"])
            found.reverse()
            return self._json(self._list("/v1/refunds", found))

    # The hosted pages.

    async def _pay_page(self, request: web.Request) -> web.Response:
        with self._lock:
            session = self.sessions.get(request.match_info["id"])
            if session is None or session["status"] != "open":
                return web.Response(
                    text="<h1>This checkout is no longer available</h1>",
                    content_type="text/html",
                    status=404 if session is None else 410,
                )
            amount = f"{session['amount_total'] / 100:.2f} {session['currency'].upper()}"
            cancel = html.escape(session["cancel_url"] or "")
        page = f"""<!doctype html><html><head><title>Fake Stripe Checkout</title></head>
<body><h1>Pay {amount}</h1>
<form method="post" action="/pay/{session["id"]}"><button id="pay" type="submit">Pay {amount}</button></form>
<p><a href="{cancel}">Back</a></p></body></html>"""
        return web.Response(text=page, content_type="text/html")

    async def _pay(self, request: web.Request) -> web.Response:
        session_id = request.match_info["id"]
        event = self.complete(session_id)
        if self.deliver_on_pay and self.webhook_url:
            # Stripe sends the webhook on its own, as the customer is redirected.
            with self._lock:
                self._sending.append(self._sender.submit(self.deliver, event))
        success = self.sessions[session_id]["success_url"].replace(
            "{CHECKOUT_SESSION_ID}", session_id
        )
        raise web.HTTPSeeOther(success)

    async def _receipt(self, request: web.Request) -> web.Response:
        return web.Response(
            text=f"<h1>Receipt for {html.escape(request.match_info['id'])}</h1>",
            content_type="text/html",
        )

    # State helpers (called with the lock held).

    def _charge(self, session: dict, intent: dict) -> None:
        charge = {
            "id": self._id("ch"),
            "object": "charge",
            "amount": intent["amount"],
            "amount_refunded": 0,
            "currency": intent["currency"],
            "payment_intent": intent["id"],
            "paid": True,
            "refunded": False,
            "disputed": False,
            "status": "succeeded",
            "created": self._now(),
            "livemode": False,
        }
        charge["receipt_url"] = f"{self.base_url}/receipts/{charge['id']}"
        self.charges[charge["id"]] = charge
        intent.update(status="succeeded", latest_charge=charge["id"])
        session["payment_status"] = "paid"

    def _charge_of(self, session_id: str) -> dict:
        intent = self.payment_intents[self.sessions[session_id]["payment_intent"]]
        return self.charges[intent["latest_charge"]]

    def make_event(self, kind: str, obj: dict) -> dict:
        """An event of `kind` about `obj` (a copy of it as it is now), kept in `events`."""
        event = {
            "id": self._id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": self._now(),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": kind,
        }
        self.events.append(event)
        return event

    def _expanded(self, obj: dict, paths: list[str]) -> dict:
        obj = copy.deepcopy(obj)
        for path in paths:
            node = obj
            for field in path.split("."):
                value = node.get(field)
                if isinstance(value, str):
                    value = copy.deepcopy(self._by_id(value))
                    node[field] = value
                if not isinstance(value, dict):
                    break
                node = value
        return obj

    def _by_id(self, object_id: str) -> dict:
        for store in (self.payment_intents, self.charges, self.refunds, self.disputes):
            if object_id in store:
                return store[object_id]
        return self.sessions[object_id]

    def _list(self, url: str, data: list[dict]) -> dict:
        return {"object": "list", "url": url, "has_more": False, "data": copy.deepcopy(data)}

    def _json(self, obj: dict, replayed: bool = False) -> web.Response:
        headers = {"Request-Id": self._id("req"), "Stripe-Version": API_VERSION}
        if replayed:
            headers["Idempotent-Replayed"] = "true"
        return web.json_response(copy.deepcopy(obj), headers=headers)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{secrets.token_hex(12)}"

    def _now(self) -> int:
        # Strictly increasing: objects made in one second still have an order.
        return max(next(self._clock), int(time.time()))

    # Serving.

    def stop(self) -> None:
        self._sender.shutdown(wait=True)
        super().stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9200)
    parser.add_argument("--webhook-url", help="PureBridge's /billing/stripe/webhook")
    args = parser.parse_args()
    fake = FakeStripe(args.host, args.port)
    fake.webhook_url = args.webhook_url

    async def serve() -> None:
        await fake._start()
        print(
            f"fake Stripe on {fake.base_url}: STRIPE_API_BASE={fake.base_url} "
            f"STRIPE_SECRET_KEY={fake.api_key} STRIPE_WEBHOOK_SECRET={fake.webhook_secret}",
            flush=True,
        )
        await asyncio.Event().wait()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
