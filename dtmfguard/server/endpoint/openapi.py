# SPDX-License-Identifier: GPL-2.0-or-later
"""The box endpoint's OpenAPI 3.1 document (served at ``/v1/openapi.json``)."""
from __future__ import annotations

__all__ = ["document"]


def _op(summary: str, *, auth: bool = True, body: dict | None = None, responses: dict | None = None,
        params: list | None = None) -> dict:
    op: dict = {"summary": summary, "responses": responses or {"200": {"description": "OK"}}}
    if auth:
        op["security"] = [{"bearer": []}]
        op["responses"].setdefault("401", {"description": "missing, wrong or expired credentials"})
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    if params:
        op["parameters"] = params
    return op


_HANDLE = {"name": "handle", "in": "path", "required": True,
           "schema": {"type": "string", "pattern": r"^[A-Za-z0-9_-]+\.[0-9]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"},
           "description": "call handle <box>.<worker>.<boot>.<call>; a handle of another box answers 307 to it"}
_ERR = {"type": "object", "properties": {"error": {"type": "string"}}}


def document(version: str) -> dict:
    payment = {"type": "object", "additionalProperties": False, "properties": {
        "amount": {"type": "integer", "minimum": 1, "description": "minor units (pence, cents)"},
        "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$"}, "reference": {"type": "string"},
        "agent_id": {"type": "string", "description": "admin only; an agent token always uses its own agent"},
        "fields": {"type": "array", "items": {"type": "string"}}}}
    call = {"type": "object", "properties": {
        "handle": {"type": "string"}, "box": {"type": "string"}, "worker": {"type": "integer"},
        "id": {"type": "string"}, "state": {"type": "string"}, "agent": {"type": "string"},
        "correlation": {"type": "object", "properties": {"call_id": {"type": "string"},
                                                         "header": {"type": "string"}}},
        "payment": {"type": ["string", "null"]}}}
    with_handle = [_HANDLE]
    return {
        "openapi": "3.1.0",
        "info": {"title": "dtmfguard box control endpoint", "version": version,
                 "description": "Calls, payments and the masked agent feed of one dtmfguard box. The feed and "
                                "every answer carry field names, digit counts, brand and last 4 at most: never "
                                "card data."},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                                      "description": "the admin token, or an agent token from "
                                                                     "POST /v1/tokens"}},
                       "schemas": {"Call": call, "Payment": payment, "Error": _ERR}},
        "paths": {
            "/health": {"get": _op("supervisor and worker health ({ok, workers: [...]})", auth=False)},
            "/metrics": {"get": _op("Prometheus metrics (text format)", auth=False)},
            "/v1/openapi.json": {"get": _op("this document", auth=False)},
            "/v1/tokens": {"post": _op("issue an agent token (admin only)", body={
                "type": "object", "required": ["agent"],
                "properties": {"agent": {"type": "string"}, "ttl_s": {"type": "number"}}},
                responses={"201": {"description": "{token, agent, expires}"}, "403": {"description": "not admin"}})},
            "/v1/calls": {"get": _op("calls of this box the credential may see", params=[
                {"name": "correlation", "in": "query", "schema": {"type": "string"},
                 "description": "the customer leg's Call-ID, the configured correlation header's value, "
                                "the agent's identity, or a handle"},
                {"name": "agent", "in": "query", "schema": {"type": "string"}}],
                responses={"200": {"description": "{calls: [Call]}"}})},
            "/v1/calls/{handle}": {"get": _op("one call", params=with_handle,
                                              responses={"200": {"description": "Call"},
                                                         "404": {"description": "no such call"}})},
            "/v1/calls/{handle}/payment": {
                "post": _op("start a payment on the call", body=payment, params=with_handle,
                            responses={"201": {"description": "{call, session, state}"},
                                       "409": {"description": "not connected, or a payment is in progress"},
                                       "503": {"description": "no gateway, or the worker did not answer"}}),
                "delete": _op("cancel the payment", params=with_handle)},
            "/v1/calls/{handle}/payment/cancel": {"post": _op("cancel the payment", params=with_handle)},
            "/v1/calls/{handle}/tickets": {"post": _op(
                "a single-use, short-lived ticket for opening the feed or the panel in a browser",
                params=with_handle, responses={"201": {"description": "{ticket, expires_in, feed_url, panel_url}"}})},
            "/v1/calls/{handle}/feed": {"get": _op(
                "the masked agent feed (text/event-stream); each event has an id; Last-Event-ID (header, or "
                "last_event_id in the query) resumes after it; ?ticket= instead of a bearer header",
                params=with_handle + [{"name": "ticket", "in": "query", "schema": {"type": "string"}},
                                      {"name": "last_event_id", "in": "query", "schema": {"type": "integer"}}],
                responses={"200": {"description": "text/event-stream"},
                           "204": {"description": "the call ended and nothing is left after Last-Event-ID"}})},
            "/panel/": {"get": _op("the agent payment panel (HTML); open as /panel/#call=<handle>&ticket=<t>",
                                   auth=False)},
        },
    }
