"""The admission's path through Kopf's dispatch to our handler (libinject.runtime.handoff).

The real Kopf is on this path in every live test: the operator sends one review through it
before its webhook listens (`check_route`), and a Kopf that no longer hands the handler our
header stops the operator at start with the reason. Here the check itself is proven, against
stand-ins for Kopf that drop or replace the headers, as an upgrade might.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest

from libinject.admission import admit
from libinject.engine.settings import EngineSettings
from libinject.runtime import handoff

Dispatch = Any  # a stand-in for Kopf's WebhookFn


def kopf_like(in_flight: handoff.InFlight, *, pass_headers: bool) -> Dispatch:
    """Kopf's dispatch as far as the handoff sees it: calls our handler with the headers (or, as
    a Kopf that stopped passing them would, with none), answering a handler's error as Kopf
    does, in the review's status."""

    async def dispatch(request: dict[str, Any], *, headers: dict[str, str], **_: Any) -> Any:
        try:
            call = in_flight.call_for(headers if pass_headers else {})
        except handoff.KopfRouteError as error:
            return {"response": {"allowed": False, "status": {"message": str(error)}}}
        call.decide = functools.partial(
            admit, call.pod, namespace=call.namespace, caches=None, settings=EngineSettings()
        )
        return {"response": {"allowed": True}}

    return dispatch


def test_the_check_passes_when_kopf_hands_the_handler_our_header() -> None:
    in_flight = handoff.InFlight()
    dispatch = kopf_like(in_flight, pass_headers=True)
    asyncio.run(handoff.check_route(dispatch, webhook="mutate-pods", in_flight=in_flight))


def test_the_check_fails_loudly_when_kopf_stops_passing_the_headers() -> None:
    """The error names Kopf's version and what the handler missed: the operator stops at start
    with it, instead of failing every pod open."""
    in_flight = handoff.InFlight()
    dispatch = kopf_like(in_flight, pass_headers=False)
    with pytest.raises(handoff.KopfRouteError) as raised:
        asyncio.run(handoff.check_route(dispatch, webhook="mutate-pods", in_flight=in_flight))
    message = str(raised.value)
    assert message.startswith("kopf 1.")
    assert f"no {handoff.HEADER} header" in message


def test_the_check_fails_when_no_handler_is_called() -> None:
    async def routes_nowhere(_: dict[str, Any], **__: Any) -> Any:
        return {"response": {"allowed": True}}

    dispatch: Dispatch = routes_nowhere
    with pytest.raises(handoff.KopfRouteError, match="no handler was called"):
        asyncio.run(
            handoff.check_route(dispatch, webhook="mutate-pods", in_flight=handoff.InFlight())
        )


def test_a_clients_header_cannot_name_another_admission() -> None:
    """The server's key replaces any value the client sent (the table is keyed by a counter a
    client could guess), and an admission leaves the table once routed."""
    in_flight = handoff.InFlight()
    mine = handoff.Pending(pod={"metadata": {"name": "mine"}}, namespace="shop")
    named = in_flight.open(mine, {handoff.HEADER: "forged", "Content-Type": "application/json"})
    assert named["Content-Type"] == "application/json"
    assert in_flight.call_for(named) is mine
    in_flight.close(named)
    with pytest.raises(handoff.KopfRouteError):
        in_flight.call_for(named)
