"""Prometheus metrics of one qfexdash process, and the ``GET /metrics`` view that serves them.

The families (names and types are a contract with dashboards and alerts — do not rename them):

=====================================  =========  ===============  ============================================
family                                 type       labels           meaning
=====================================  =========  ===============  ============================================
``qfexdash_upstream_requests_total``   counter    ``type``         requests sent to QFEX, by message type
``qfexdash_upstream_sessions``         gauge                       open upstream (QFEX) sessions
``qfexdash_sockets``                   gauge                       open browser WebSockets
``qfexdash_event_publish_seconds``     histogram                   a push's arrival → its diff published
``qfexdash_rate_budget_share``         gauge      ``account``      share of the key's QFEX budget used, last 60 s
``qfexdash_feed_state``                gauge      ``account``,     1 for the account's current state, 0 for
                                                  ``state``        the other states it has been in
``qfexdash_corrections_total``         counter    ``account``,     orders a complete read contradicted: ``kind``
                                                  ``kind``         "relisted" (a push had closed it, the read
                                                                   listed it) or "removed" (a push had kept it,
                                                                   the read no longer listed it)
``qfexdash_complete_read_age_seconds`` gauge      ``account``      seconds since the account's last complete
                                                                   read (docs/qfex-protocol.md §4.4)
=====================================  =========  ===============  ============================================

Corrections are how a wrong assumption about QFEX (a status read the wrong way, a push that arrives late
or never) shows up in operation instead of on a trader's screen; each is also logged once per order
(:mod:`orders.live.feed.corrections`).

The feed and the consumer call the small helpers below (module functions working on :data:`METRICS`).
Every family lives in a :class:`Metrics` object's own ``CollectorRegistry``, never the global default,
so tests can build a fresh :class:`Metrics` and nothing else in the process adds series to ours.

Who may read ``/metrics``: clients whose ``REMOTE_ADDR`` is inside ``QFEXDASH_METRICS_ALLOW``
(comma-separated CIDRs; loopback only by default). Anyone else gets the site's ordinary 404, as for an
unknown URL. A request that carries ``X-Forwarded-For`` or ``Forwarded`` is refused too: it came through
a proxy, and with Daphne's ``--proxy-headers`` the address Daphne reports is then the header's first
entry, which the client chose. So scrape each Daphne process directly on its own port, not through the
public proxy (docs/deployment.md has a Prometheus example). Metrics are per process: scrape every one.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import time
from collections.abc import Callable, Iterable, Iterator

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector

# From a tenth of a millisecond (a diff encoded and handed to the channel layer) to two seconds (a
# full re-read of a large book behind the rate budget); anything slower lands in +Inf.
PUBLISH_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
_STATE = re.compile(r"[a-z][a-z0-9_]{0,31}")
CORRECTION_KINDS = frozenset({"relisted", "removed"})
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ReadAges(Collector):
    """``qfexdash_complete_read_age_seconds``: the age is computed when scraped, from each account's last
    complete read (a monotonic time), so a feed that stopped reading shows an age that keeps growing."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.last: dict[str, float] = {}

    def note(self, account: str) -> None:
        self.last[account] = self._clock()

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "qfexdash_complete_read_age_seconds",
            "Seconds since the account's last complete read of its open orders.",
            labels=["account"],
        )
        now = self._clock()
        for account, at in list(self.last.items()):
            family.add_metric([account], max(0.0, now - at))
        yield family


class Metrics:
    """The families above on a registry of their own, with the helpers that change them."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._upstream_requests = Counter(
            "qfexdash_upstream_requests_total",
            "Requests qfexdash sent to QFEX, by message type.",
            ["type"],
            registry=self.registry,
        )
        self.upstream_sessions = Gauge(
            "qfexdash_upstream_sessions", "Open upstream (QFEX) sessions of this process.", registry=self.registry
        )
        self.sockets = Gauge("qfexdash_sockets", "Open browser WebSockets of this process.", registry=self.registry)
        self._publish = Histogram(
            "qfexdash_event_publish_seconds",
            "Seconds from an order_response push's arrival to the publication of the diff that carries it.",
            buckets=PUBLISH_BUCKETS,
            registry=self.registry,
        )
        self._budget_share = Gauge(
            "qfexdash_rate_budget_share",
            "Share of the account key's QFEX rate budget (12 000 weight / 60 s) used over the last 60 s.",
            ["account"],
            registry=self.registry,
        )
        self._feed_state = Gauge(
            "qfexdash_feed_state",
            "1 for the account feed's current state, 0 for the other states it has been in.",
            ["account", "state"],
            registry=self.registry,
        )
        self._corrections = Counter(
            "qfexdash_corrections_total",
            "Orders a complete read contradicted: re-listed after a push closed them, or removed after a push "
            "kept them.",
            ["account", "kind"],
            registry=self.registry,
        )
        self._read_ages = ReadAges()
        self.registry.register(self._read_ages)
        self._states: dict[str, set[str]] = {}

    # --- helpers the feed and the consumer call ------------------------------------------------------

    def upstream_request(self, kind: str, count: int = 1) -> None:
        """``count`` requests of message type ``kind`` (e.g. ``"get_user_orders"``) sent to QFEX."""
        self._upstream_requests.labels(type=kind).inc(count)

    def observe_publish(self, seconds: float) -> None:
        """One push's arrival → the publication of its diff, in seconds."""
        self._publish.observe(seconds)

    def set_budget_share(self, account_id: int, share: float) -> None:
        """The share (0.0 to 1.0, above 1.0 when over) of the account's QFEX budget used over the last 60 s."""
        self._budget_share.labels(account=str(int(account_id))).set(share)

    def set_feed_state(self, account_id: int, state: str) -> None:
        """The account feed is now in ``state`` (``orders.live.protocol``: connecting, live, stale, error,
        idle, or a new one — lower-case words); its other states seen so far drop to 0."""
        if not isinstance(state, str) or not _STATE.fullmatch(state):
            raise ValueError(f"a feed state is a short lower-case word, not {state!r}")
        account = str(int(account_id))
        seen = self._states.setdefault(account, set())
        seen.add(state)
        for name in seen:
            self._feed_state.labels(account=account, state=name).set(1 if name == state else 0)

    def correction(self, account_id: int, kind: str) -> None:
        """A complete read of the account contradicted a push (``kind``: "relisted" or "removed")."""
        if kind not in CORRECTION_KINDS:
            raise ValueError(f"a correction is one of {sorted(CORRECTION_KINDS)}, not {kind!r}")
        self._corrections.labels(account=str(int(account_id)), kind=kind).inc()

    def complete_read(self, account_id: int) -> None:
        """The account's feed finished a complete read now."""
        self._read_ages.note(str(int(account_id)))

    def forget_account(self, account_id: int) -> None:
        """Drop the account's series (its feed stopped), so stopped feeds do not linger in every scrape."""
        account = str(int(account_id))
        for state in self._states.pop(account, set()):
            self._feed_state.remove(account, state)
        with contextlib.suppress(KeyError):  # no share was ever set
            self._budget_share.remove(account)
        for kind in CORRECTION_KINDS:
            with contextlib.suppress(KeyError):
                self._corrections.remove(account, kind)
        self._read_ages.last.pop(account, None)

    def render(self) -> bytes:
        """The families in Prometheus' text format (0.0.4)."""
        return generate_latest(self.registry)


METRICS = Metrics()


def upstream_request(kind: str, count: int = 1) -> None:
    METRICS.upstream_request(kind, count)


def session_opened() -> None:
    METRICS.upstream_sessions.inc()


def session_closed() -> None:
    METRICS.upstream_sessions.dec()


def socket_opened() -> None:
    METRICS.sockets.inc()


def socket_closed() -> None:
    METRICS.sockets.dec()


def observe_publish(seconds: float) -> None:
    METRICS.observe_publish(seconds)


def set_budget_share(account_id: int, share: float) -> None:
    METRICS.set_budget_share(account_id, share)


def set_feed_state(account_id: int, state: str) -> None:
    METRICS.set_feed_state(account_id, state)


def correction(account_id: int, kind: str) -> None:
    METRICS.correction(account_id, kind)


def complete_read(account_id: int) -> None:
    METRICS.complete_read(account_id)


def forget_account(account_id: int) -> None:
    METRICS.forget_account(account_id)


# --- the view ---------------------------------------------------------------------------------------


def allowed(address: str, networks: Iterable[Network]) -> bool:
    """Whether ``address`` (an IP, as in ``REMOTE_ADDR``) is inside one of ``networks``.
    An IPv4 address seen as IPv6 (``::ffff:127.0.0.1``) counts as the IPv4 address."""
    try:
        ip = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return False
    candidates = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return any(candidate in network for candidate in candidates for network in networks)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the families, for allowed addresses only; 404 otherwise (see the module docstring).
    No sign-in: the allow-list is the access control. The address is checked before anything else, so a
    refused client cannot tell the URL exists (not even from a 405)."""
    if any(request.META.get(header) for header in _PROXY_HEADERS):
        raise Http404
    if not allowed(str(request.META.get("REMOTE_ADDR") or ""), settings.QFEXDASH_METRICS_ALLOW):
        raise Http404
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    response = HttpResponse(METRICS.render(), content_type=CONTENT_TYPE_PLAIN_0_0_4)
    response["Cache-Control"] = "no-store"
    return response
