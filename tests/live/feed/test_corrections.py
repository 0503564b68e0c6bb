"""Corrections and undocumented statuses: counted, and logged once each, with bounded memory and text."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from orders.live import metrics
from orders.live.feed import corrections
from orders.live.feed.state import RELISTED, REMOVED, Correction


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> metrics.Metrics:
    instance = metrics.Metrics()
    monkeypatch.setattr(metrics, "METRICS", instance)
    monkeypatch.setattr(corrections, "_logged", corrections._Once(3))
    monkeypatch.setattr(corrections, "_statuses", corrections._Once(3))
    return instance


def _count(instance: metrics.Metrics, kind: str) -> float:
    for family in text_string_to_metric_families(instance.render().decode()):
        for sample in family.samples:
            if sample.name == "qfexdash_corrections_total" and sample.labels == {"account": "7", "kind": kind}:
                return sample.value
    return 0.0


def test_each_correction_is_counted_and_logged_once_per_order(
    fresh: metrics.Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "orders.live.feed")
    corrections.report(7, [Correction(RELISTED, "ord-1"), Correction(RELISTED, "ord-1"), Correction(REMOVED, "ord-1")])
    assert _count(fresh, RELISTED) == 2
    assert _count(fresh, REMOVED) == 1
    assert caplog.text.count("listed order ord-1 again") == 1
    assert caplog.text.count("no longer listed order ord-1") == 1
    corrections.report(7, [Correction(RELISTED, "x" * 500)])
    assert "x" * 80 not in caplog.text  # exchange text in a log line is bounded


def test_an_undocumented_status_is_logged_once_shortened(
    caplog: pytest.LogCaptureFixture, fresh: metrics.Metrics
) -> None:
    caplog.set_level(logging.WARNING, "orders.live.feed")
    for _ in range(3):
        corrections.unknown_status(7, "BRAND_NEW_STATUS")
    corrections.unknown_status(7, "Y" * 10_000)
    assert caplog.text.count("BRAND_NEW_STATUS") == 1
    assert "Y" * 100 not in caplog.text
