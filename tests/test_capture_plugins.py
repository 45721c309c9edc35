# SPDX-License-Identifier: GPL-2.0-or-later
"""Gateway plugins: built-ins, module:attribute, the dtmfguard.gateways entry point group, and clear
errors for everything else."""
from __future__ import annotations

import importlib
import sys

import pytest
from _capture_util import SAMPLES

from dtmfguard.capture import CardDetails
from dtmfguard.capture.gateways import (
    GatewayConfigError, PaymentRequest, available_gateways, load_gateway, new_idempotency_key,
)
from dtmfguard.capture.gateways.vault import VaultGateway
from dtmfguard.capture.gateways.webhook import WebhookGateway


@pytest.fixture
def samples_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(SAMPLES))
    importlib.invalidate_caches()


def request(amount=100):
    return PaymentRequest(new_idempotency_key(), CardDetails("4111111111111111", "1139", "847"), amount)


def test_builtins(tmp_path):
    assert isinstance(load_gateway("vault", path=tmp_path / "v.db", key=bytes(32)), VaultGateway)
    assert isinstance(load_gateway("webhook", url="https://pay.example/x", secret=b"s" * 32), WebhookGateway)
    assert {"vault", "webhook"} <= set(available_gateways())


def test_module_attribute(samples_on_path):
    gateway = load_gateway("gateway_plugin:TestCardGateway", approve_up_to=50)
    assert gateway.submit(request(50)).status == "approved"
    assert gateway.submit(request(51)).status == "declined"


def test_entry_point(tmp_path, samples_on_path, monkeypatch):
    dist = tmp_path / "acme_pay-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-pay\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[dtmfguard.gateways]\nacme = gateway_plugin:TestCardGateway\n"
                                           "broken = no_such_module_xyz:Gateway\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    assert {"acme", "broken"} <= set(available_gateways())
    assert load_gateway("acme").submit(request()).status == "approved"
    with pytest.raises(GatewayConfigError, match="'broken' failed to load"):
        load_gateway("broken")


@pytest.mark.parametrize("spec, options, message", [
    ("nope", {}, "unknown gateway 'nope'; available: .*vault.*webhook"),
    ("no_such_module_xyz:Thing", {}, "cannot import gateway module"),
    ("dtmfguard.capture.card:NoSuchThing", {}, "has no attribute"),
    ("dtmfguard.capture.card:BRANDS", {}, "no submit"),
    ("dtmfguard.capture.card:", {}, "module:attribute"),
    ("", {}, "non-empty"),
])
def test_errors(spec, options, message):
    with pytest.raises(GatewayConfigError, match=message):
        load_gateway(spec, **options)


def test_instance_attribute(samples_on_path, monkeypatch):
    plugin = importlib.import_module("gateway_plugin")
    monkeypatch.setattr(plugin, "READY", plugin.TestCardGateway(), raising=False)
    assert load_gateway("gateway_plugin:READY") is plugin.READY
    with pytest.raises(GatewayConfigError, match="is an instance"):
        load_gateway("gateway_plugin:READY", approve_up_to=1)
    assert "gateway_plugin" in sys.modules
