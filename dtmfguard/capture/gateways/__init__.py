# SPDX-License-Identifier: GPL-2.0-or-later
"""Gateways: built-ins (``vault``, ``webhook``) and plugins.

A processor's integration can ship as a plugin without touching dtmfguard: either name it in the
configuration as ``package.module:attribute`` or register it under the entry point group
``dtmfguard.gateways`` in its own ``pyproject.toml``::

    [project.entry-points."dtmfguard.gateways"]
    acme = "acme_pay.dtmfguard:AcmeGateway"

``load_gateway("acme", **options)`` then builds it.  The attribute may be a :class:`Gateway` subclass or
factory (called with the options) or a ready instance (no options allowed).
"""
from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points
from typing import Any, Dict, List

from .base import (
    Gateway, GatewayConfigError, GatewayError, GatewayResult, GatewayUnavailable, PaymentRequest,
    new_idempotency_key, new_token,
)

__all__ = [
    "Gateway", "GatewayConfigError", "GatewayError", "GatewayResult", "GatewayUnavailable", "PaymentRequest",
    "ENTRY_POINT_GROUP", "available_gateways", "load_gateway", "resolve_gateway", "new_idempotency_key", "new_token",
]

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dtmfguard.gateways"
_BUILTINS = {
    "vault": "dtmfguard.capture.gateways.vault:VaultGateway",
    "webhook": "dtmfguard.capture.gateways.webhook:WebhookGateway",
}


def _entry_points() -> Dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available_gateways() -> List[str]:
    """Built-in names plus every installed plugin's entry point name."""
    return sorted(set(_BUILTINS) | set(_entry_points()))


def _import_attr(spec: str) -> Any:
    module_name, _, attr_path = spec.partition(":")
    if not module_name or not attr_path:
        raise GatewayConfigError(f"gateway plugin must be 'module:attribute', got {spec!r}")
    try:
        target = importlib.import_module(module_name)
    except ImportError as exc:
        raise GatewayConfigError(f"cannot import gateway module {module_name!r} ({exc})") from None
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise GatewayConfigError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    return target


def resolve_gateway(spec: str) -> Any:
    """What ``spec`` names (a class, factory or instance), imported but not built.  A worker calls it at
    start so that its first payment does not import the gateway's module (and its crypto or TLS
    libraries) on the thread that owns the calls; :func:`load_gateway` builds from it."""
    if not isinstance(spec, str) or not spec:
        raise GatewayConfigError("gateway spec must be a non-empty string")
    if spec in _BUILTINS:
        target = _import_attr(_BUILTINS[spec])
    elif ":" in spec:
        target = _import_attr(spec)
    else:
        found = _entry_points().get(spec)
        if found is None:
            raise GatewayConfigError(f"unknown gateway {spec!r}; available: {', '.join(available_gateways())} "
                                     "(or give module:attribute)")
        try:
            target = found.load()
        except Exception as exc:
            raise GatewayConfigError(f"gateway plugin {spec!r} failed to load ({type(exc).__name__})") from None
    return target


def load_gateway(spec: str, **options: Any) -> Gateway:
    """Build a gateway from a built-in name, an entry point name or ``module:attribute``."""
    target = resolve_gateway(spec)
    if isinstance(target, type) or (callable(target) and not hasattr(target, "submit")):
        gateway = target(**options)
    else:
        if options:
            raise GatewayConfigError(f"gateway {spec!r} is an instance; options cannot be applied to it")
        gateway = target
    if not callable(getattr(gateway, "submit", None)):
        raise GatewayConfigError(f"gateway {spec!r} has no submit(request) method")
    logger.debug("loaded gateway %s (%s)", spec, type(gateway).__name__)
    return gateway
