"""localstripe (a fake Stripe API server) with what billing needs that it lacks.

Run as ``python -m tests.billing.fakestripe``: it listens on 127.0.0.1 on a port the
system picks and prints that port on its first line. On top of localstripe's own API
(customers, plans, subscriptions, invoices, ...) it serves:

* ``/v1/checkout/sessions`` (create, retrieve, list by customer and status, expire) and
  ``/v1/billing_portal/sessions`` (create): Stripe's hosted-page sessions, whose ``url``
  is a page of this server;
* that page (``GET /_config/pages/<id>``): what a member's browser reaches after the hand-off;
* ``POST /_config/test/checkout/<id>/complete``: the customer paying on the Checkout page —
  the subscription is created for the session's price and is ``active``;
* ``POST /_config/test/subscriptions/<id>/status``: Stripe moving a subscription to another
  status over time (``past_due`` after a failed renewal, ``unpaid``...).

localstripe's store is kept in memory only (it would write /tmp/localstripe.pickle,
which parallel test runs would share).
"""

from __future__ import annotations

import socket
import sys

from aiohttp import web
from localstripe import resources
from localstripe.errors import UserError
from localstripe.resources import Customer, Plan, StripeObject, Subscription

resources.Store.dump_to_disk = lambda self: None
resources.Store.try_load_from_disk = lambda self: None
BASE = {"url": ""}


class CheckoutSession(StripeObject):
    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, mode=None, customer=None, line_items=None, success_url=None,
                 cancel_url=None, client_reference_id=None, metadata=None, **kwargs):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs))
        if mode != "subscription" or not isinstance(line_items, list) or len(line_items) != 1:
            raise UserError(400, "Bad request")
        if not (success_url or "").startswith("https://") \
                or not (cancel_url or "").startswith("https://"):
            raise UserError(400, "Bad request")
        Customer._api_retrieve(customer)
        Plan._api_retrieve(line_items[0].get("price"))
        super().__init__()
        self.mode, self.customer, self.status = mode, customer, "open"
        self.line_items = [{"price": line_items[0]["price"], "quantity": 1}]
        self.success_url, self.cancel_url = success_url, cancel_url
        self.client_reference_id = client_reference_id
        self.metadata = metadata or {}
        self.subscription = None
        self.url = f"{BASE['url']}/_config/pages/{self.id}"

    @classmethod
    def _api_list_all(cls, url, customer=None, status=None, limit=None,
                      starting_after=None, **kwargs):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs))
        li = super()._api_list_all(url, limit=limit, starting_after=starting_after)
        li._list = [s for s in li._list if (customer is None or s.customer == customer)
                    and (status is None or s.status == status)]
        return li

    @classmethod
    def _api_expire(cls, id, **kwargs):
        session = cls._api_retrieve(id)
        if session.status != "open":
            raise UserError(400, "Only an open session can be expired")
        session.status = "expired"
        return session


class PortalSession(StripeObject):
    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, customer=None, return_url=None, **kwargs):
        if kwargs:
            raise UserError(400, "Unexpected " + ", ".join(kwargs))
        Customer._api_retrieve(customer)
        if not (return_url or "").startswith("https://"):
            raise UserError(400, "Bad request")
        super().__init__()
        self.customer, self.return_url = customer, return_url
        self.url = f"{BASE['url']}/_config/pages/{self.id}"


resources.extra_apis.extend([
    ("POST", "/v1/checkout/sessions", CheckoutSession._api_create),
    ("GET", "/v1/checkout/sessions/{id}", CheckoutSession._api_retrieve),
    ("GET", "/v1/checkout/sessions", lambda **data: CheckoutSession._api_list_all(
        "/v1/checkout/sessions", **data)),
    ("POST", "/v1/checkout/sessions/{id}/expire", CheckoutSession._api_expire),
    ("POST", "/v1/billing_portal/sessions", PortalSession._api_create),
])

from localstripe import server  # noqa: E402 — builds its routes from extra_apis


async def page(request):
    return web.Response(text=f"<!doctype html><title>Fake Stripe</title>"
                             f"<h1>Fake Stripe page {request.match_info['id']}</h1>",
                        content_type="text/html")


async def complete(request):
    session = CheckoutSession._api_retrieve(request.match_info["id"])
    if session.status != "open":
        raise UserError(400, "This Checkout session is no longer open")
    sub = Subscription(customer=session.customer,
                       items=[{"plan": session.line_items[0]["price"]}],
                       trial_period_days=30)
    sub.status = "active"
    session.status, session.subscription = "complete", sub.id
    return server.json_response(session._export())


async def set_status(request):
    data = await request.post()
    sub = Subscription._api_retrieve(request.match_info["id"])
    sub.status = data["status"]
    return server.json_response(sub._export())


server.app.router.add_get("/_config/pages/{id}", page)
server.app.router.add_post("/_config/test/checkout/{id}/complete", complete)
server.app.router.add_post("/_config/test/subscriptions/{id}/status", set_status)


def main() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    BASE["url"] = f"http://127.0.0.1:{port}"
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    web.run_app(server.app, sock=sock, print=None, access_log=None)


if __name__ == "__main__":
    sys.exit(main())
