"""GET /metrics (orders/live/metrics.py): the families by exact name and type, for allowed addresses only."""

from __future__ import annotations

import ipaddress
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from orders.live import metrics
from qfexdash.env import env_networks

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {
    "qfexdash_upstream_requests_total": "counter",
    "qfexdash_upstream_sessions": "gauge",
    "qfexdash_sockets": "gauge",
    "qfexdash_event_publish_seconds": "histogram",
    "qfexdash_rate_budget_share": "gauge",
    "qfexdash_feed_state": "gauge",
    "qfexdash_corrections_total": "counter",
    "qfexdash_complete_read_age_seconds": "gauge",
}


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> metrics.Metrics:
    """The view serves a new, empty Metrics for this test only."""
    instance = metrics.Metrics()
    monkeypatch.setattr(metrics, "METRICS", instance)
    return instance


def _types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, flags=re.MULTILINE))


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.mark.django_db
def test_an_allowed_address_gets_every_family_with_its_exact_name_and_type(fresh: metrics.Metrics) -> None:
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics")  # no sign-in
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    assert response["Cache-Control"] == "no-store"
    types = _types(response.content.decode())
    assert {name: types.get(name) for name in FAMILIES} == FAMILIES


@pytest.mark.django_db
def test_the_helpers_show_up_in_the_scrape(fresh: metrics.Metrics, monkeypatch: pytest.MonkeyPatch) -> None:
    # The module-level helpers are what the feed and the consumer call.
    metrics.upstream_request("get_user_orders")
    metrics.upstream_request("get_user_orders", 2)
    metrics.upstream_request("subscribe")
    fresh.sockets.inc()
    fresh.sockets.inc()
    fresh.sockets.dec()
    fresh.upstream_sessions.set(3)
    metrics.observe_publish(0.0004)
    metrics.observe_publish(3.0)
    metrics.set_budget_share(7, 0.042)
    metrics.set_feed_state(7, "connecting")
    metrics.set_feed_state(7, "live")
    metrics.set_feed_state(8, "stale")
    text = Client(REMOTE_ADDR="::1").get("/metrics").content.decode()
    samples = _samples(text)
    assert samples[("qfexdash_upstream_requests_total", (("type", "get_user_orders"),))] == 3
    assert samples[("qfexdash_upstream_requests_total", (("type", "subscribe"),))] == 1
    assert samples[("qfexdash_sockets", ())] == 1
    assert samples[("qfexdash_upstream_sessions", ())] == 3
    assert samples[("qfexdash_event_publish_seconds_bucket", (("le", "0.0005"),))] == 1
    assert samples[("qfexdash_event_publish_seconds_bucket", (("le", "2.0"),))] == 1
    assert samples[("qfexdash_event_publish_seconds_bucket", (("le", "+Inf"),))] == 2
    assert samples[("qfexdash_event_publish_seconds_count", ())] == 2
    assert samples[("qfexdash_rate_budget_share", (("account", "7"),))] == 0.042
    assert samples[("qfexdash_feed_state", (("account", "7"), ("state", "live")))] == 1
    assert samples[("qfexdash_feed_state", (("account", "7"), ("state", "connecting")))] == 0
    assert samples[("qfexdash_feed_state", (("account", "8"), ("state", "stale")))] == 1
    metrics.forget_account(7)
    after = _samples(Client(REMOTE_ADDR="127.0.0.1").get("/metrics").content.decode())
    assert not [key for key in after if ("account", "7") in key[1]]
    assert after[("qfexdash_feed_state", (("account", "8"), ("state", "stale")))] == 1
    with pytest.raises(ValueError, match="feed state"):
        metrics.set_feed_state(8, "Not A State!")


def test_corrections_are_counted_per_account_and_kind_and_read_ages_grow() -> None:
    clock = [100.0]
    instance = metrics.Metrics()
    instance._read_ages._clock = lambda: clock[0]
    instance.correction(7, "relisted")
    instance.correction(7, "relisted")
    instance.correction(7, "removed")
    instance.complete_read(7)
    clock[0] = 112.5
    samples = _samples(instance.render().decode())
    assert samples[("qfexdash_corrections_total", (("account", "7"), ("kind", "relisted")))] == 2
    assert samples[("qfexdash_corrections_total", (("account", "7"), ("kind", "removed")))] == 1
    assert samples[("qfexdash_complete_read_age_seconds", (("account", "7"),))] == 12.5
    instance.complete_read(7)
    assert _samples(instance.render().decode())[("qfexdash_complete_read_age_seconds", (("account", "7"),))] == 0
    with pytest.raises(ValueError, match="correction"):
        instance.correction(7, "guessed")
    instance.forget_account(7)
    assert not [key for key in _samples(instance.render().decode()) if ("account", "7") in key[1]]


def test_each_metrics_object_has_its_own_registry() -> None:
    one, two = metrics.Metrics(), metrics.Metrics()  # building twice would fail on a shared registry
    one.upstream_request("get_user_orders")
    assert "qfexdash_upstream_requests_total" in one.render().decode()
    assert 'type="get_user_orders"' not in two.render().decode()
    from prometheus_client import REGISTRY

    assert not [name for name in REGISTRY._names_to_collectors if name.startswith("qfexdash_")]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "headers"),
    [
        ("10.1.2.3", {}),
        ("192.168.0.9", {}),
        ("2001:db8::1", {}),
        ("::ffff:10.1.2.3", {}),
        ("not-an-address", {}),
        ("", {}),
        # Through a proxy: Daphne's --proxy-headers would take the client's own claim from this header.
        ("127.0.0.1", {"HTTP_X_FORWARDED_FOR": "127.0.0.1"}),
        ("127.0.0.1", {"HTTP_FORWARDED": "for=127.0.0.1"}),
    ],
)
def test_anyone_else_gets_the_same_404_as_an_unknown_url(fresh: metrics.Metrics, address: str, headers: dict) -> None:
    client = Client(REMOTE_ADDR=address)
    refused = client.get("/metrics", **headers)
    unknown = client.get("/no-such-page", **headers)
    assert refused.status_code == unknown.status_code == 404
    assert refused.content == unknown.content
    assert client.post("/metrics", **headers).status_code == 404  # not even a 405 tells the URL exists


@pytest.mark.django_db
def test_allowed_addresses_follow_the_setting(fresh: metrics.Metrics, settings) -> None:
    assert Client(REMOTE_ADDR="::ffff:127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").post("/metrics").status_code == 405
    settings.QFEXDASH_METRICS_ALLOW = env_networks("X", "10.0.0.0/8")
    assert Client(REMOTE_ADDR="10.9.8.7").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404
    settings.QFEXDASH_METRICS_ALLOW = env_networks("X", "")
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 404


@pytest.mark.django_db
def test_a_plain_http_scrape_is_not_redirected_to_https(fresh: metrics.Metrics, settings) -> None:
    settings.SECURE_SSL_REDIRECT = True
    client = Client(REMOTE_ADDR="127.0.0.1")
    assert client.get("/metrics").status_code == 200
    assert client.get("/healthz").status_code == 301  # everything else still goes to HTTPS


def test_the_setting_reads_cidrs() -> None:
    assert env_networks("QFEXDASH_METRICS_ALLOW", "127.0.0.0/8,::1/128", {}) == (
        ipaddress.ip_network("127.0.0.0/8"),
        ipaddress.ip_network("::1/128"),
    )
    assert env_networks("QFEXDASH_METRICS_ALLOW", "x", {"QFEXDASH_METRICS_ALLOW": " 10.0.0.0/8 , 10.1.2.3 "}) == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("10.1.2.3/32"),
    )
    assert env_networks("QFEXDASH_METRICS_ALLOW", "127.0.0.0/8", {"QFEXDASH_METRICS_ALLOW": ""}) == ()


@pytest.mark.parametrize("value", ["10.0.0.1/8", "localhost", "10.0.0.0/33", "127.0.0.0/8;::1/128"])
def test_a_bad_cidr_stops_start_up_naming_the_variable(tmp_path: Path, value: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("QFEX", "DATABASE", "REDIS", "DEBUG"))}
    environ.update(QFEXDASH_STATE_DIR=str(tmp_path), QFEXDASH_METRICS_ALLOW=value)
    code = "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE','qfexdash.settings'); django.setup()"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "QFEXDASH_METRICS_ALLOW" in result.stderr
    assert repr(value.split(",")[0].strip()) in result.stderr or value in result.stderr
