"""Prometheus metrics of the gateway, served by the admin API at ``GET /metrics`` (no token:
a scraper reads them as a load balancer reads ``/livez``).

Counters and histograms are fed as things happen (hooks the composition root wires: the order
path's timings, fills and closed orders, the store's commits); the rest is read when scraped
(sessions, open orders, venues, the kill switch, the store), so a scrape costs what is open,
never what happened. Every metric is named ``fixgw_*`` besides prometheus-client's
``process_*`` and ``python_*``; the README lists them ("Operating fixgw").
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prometheus_client import (
    CollectorRegistry,
    Histogram,
    generate_latest,
)
from prometheus_client import (
    Counter as PromCounter,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.orders.manager import OrderManager
    from gateway.orders.model import Order
    from gateway.server.acceptor import Acceptor
    from gateway.store.records import FillRecord

    from .venues import VenueWatch

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class Fill:
    """A fill as the dashboard lists it."""

    ts_ns: int
    session: str
    order_id: str
    cl_ord_id: str
    venue: str
    symbol: str
    side: str
    quantity: Decimal
    price: Decimal


class Metrics:
    def __init__(self, acceptor: Acceptor, orders: OrderManager, venues: VenueWatch,
                 store: Any) -> None:
        self.acceptor = acceptor
        self.orders = orders
        self.venues = venues
        self.store = store
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        r = self.registry
        self.order_to_venue = Histogram(
            "fixgw_order_to_venue_seconds", "From a NewOrderSingle received to its venue call",
            ["venue"], buckets=LATENCY_BUCKETS, registry=r)
        self.venue_request = Histogram(
            "fixgw_venue_request_seconds",
            "A venue call (place, place_batch) until it ended, whatever the outcome (accepted, "
            "refused, failed, timed out)",
            ["venue", "request"], buckets=LATENCY_BUCKETS, registry=r)
        self.report = Histogram(
            "fixgw_report_seconds",
            "From a venue event to its ExecutionReport committed and handed to the socket",
            ["venue"], buckets=LATENCY_BUCKETS, registry=r)
        self.store_commit = Histogram(
            "fixgw_store_commit_seconds", "One commit of the store's writer (a group of writes)",
            buckets=LATENCY_BUCKETS, registry=r)
        self.fills = PromCounter("fixgw_fills", "Fills applied to orders", ["venue", "symbol"],
                                 registry=r)
        self.closed = PromCounter("fixgw_orders_closed", "Orders ended, by final state",
                                  ["venue", "state"], registry=r)
        self.recent_fills: deque[Fill] = deque(maxlen=50)
        self._series: dict[tuple[str, ...], Any] = {}
        """(metric, labels...) -> its labelled child: ``labels()`` once per series, not per
        order (it costs as much as the observation itself)."""
        r.register(_Scraped(self))

    # --- hooks --------------------------------------------------------------------------------

    def timing(self, kind: str, venue: str, seconds: float) -> None:
        """``kind``: ``order_to_venue``, ``place``, ``place_batch`` or ``report``."""
        series = self._series.get((kind, venue))
        if series is None:
            if kind == "order_to_venue":
                series = self.order_to_venue.labels(venue)
            elif kind == "report":
                series = self.report.labels(venue)
            else:
                series = self.venue_request.labels(venue, kind)
            self._series[(kind, venue)] = series
        series.observe(seconds)

    def commit(self, seconds: float) -> None:
        """One store commit (called on the thread that committed it: the store's writer
        thread, or the event loop's for an inline commit; a histogram is thread-safe)."""
        self.store_commit.observe(seconds)

    def fill(self, o: Order, fill: FillRecord) -> None:
        key = ("fill", o.venue, o.symbol)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.fills.labels(o.venue, o.symbol)
        series.inc()
        self.recent_fills.appendleft(Fill(fill.ts_ns, o.session_id, o.order_id, o.cl_ord_id,
                                          o.venue, o.symbol, o.side.name.lower(),
                                          fill.quantity, fill.price))

    def order_closed(self, o: Order) -> None:
        key = ("closed", o.venue, o.status.name)
        series = self._series.get(key)
        if series is None:
            series = self._series[key] = self.closed.labels(o.venue, o.status.name.lower())
        series.inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _Scraped(Collector):
    """What is read when scraped."""

    def __init__(self, m: Metrics) -> None:
        self.m = m

    def describe(self) -> list[Metric]:
        return []  # (read at scrape time: nothing to check at registration)

    def collect(self) -> Iterator[Metric]:
        m = self.m
        yield from _sessions(m.acceptor)
        yield from _orders(m.orders)
        yield from _venues(m.venues.states)
        kill = GaugeMetricFamily("fixgw_kill_switch_engaged",
                                 "1 while the kill switch of the scope is engaged",
                                 labels=["scope"])
        for scope in m.orders.kill_switches():
            kill.add_metric([scope], 1)
        yield kill
        up = GaugeMetricFamily("fixgw_store_up", "1 while the store takes writes")
        up.add_metric([], 1 if getattr(m.store, "available", True) else 0)
        yield up
        outages = CounterMetricFamily("fixgw_store_outages", "Times the store went down")
        outages.add_metric([], getattr(m.store, "outages", 0))
        yield outages
        stats = getattr(m.store, "stats", None)
        if stats is not None:
            batches = CounterMetricFamily("fixgw_store_commits", "Commits of the store's writer")
            batches.add_metric([], stats.batches)
            yield batches


def _sessions(acceptor: Acceptor) -> Iterator[Metric]:
    rows = acceptor.sessions_state()
    on = GaugeMetricFamily("fixgw_session_logged_on", "1 while the session is logged on",
                           labels=["session"])
    out_seq = GaugeMetricFamily("fixgw_session_next_sender_seq",
                                "Next MsgSeqNum the gateway sends", labels=["session"])
    in_seq = GaugeMetricFamily("fixgw_session_next_target_seq",
                               "Next MsgSeqNum expected from the client", labels=["session"])
    m_in = CounterMetricFamily("fixgw_session_messages_received",
                               "FIX messages read, by MsgType", labels=["session", "msg_type"])
    m_out = CounterMetricFamily("fixgw_session_messages_sent",
                                "FIX messages written, by MsgType (resends included)",
                                labels=["session", "msg_type"])
    logons = CounterMetricFamily("fixgw_session_logons", "Logons completed", labels=["session"])
    drops = CounterMetricFamily("fixgw_session_disconnects", "Connections of the session ended",
                                labels=["session"])
    rejects = CounterMetricFamily(
        "fixgw_session_rejects", "Refusals written, by message and reason code "
        "(373, 380, 103, 102, 281)", labels=["session", "message", "reason"])
    traffic = acceptor.traffic.sessions
    for row in rows:
        sid = row["session"]
        on.add_metric([sid], 1 if row["logged_on"] else 0)
        out_seq.add_metric([sid], row["next_sender_seq"])
        in_seq.add_metric([sid], row["next_target_seq"])
        st = traffic.get(sid)
        if st is None:
            continue
        for mt, n in sorted(st.messages_in.items()):
            m_in.add_metric([sid, mt], n)
        for mt, n in sorted(st.messages_out.items()):
            m_out.add_metric([sid, mt], n)
        logons.add_metric([sid], st.logons)
        drops.add_metric([sid], st.disconnects)
        for (name, reason), n in sorted(st.rejects.items()):
            rejects.add_metric([sid, name, reason], n)
    yield from (on, out_seq, in_seq, m_in, m_out, logons, drops, rejects)


def _orders(orders: OrderManager) -> Iterator[Metric]:
    counts: Counter[tuple[str, str, str]] = Counter()
    for o in orders.book.client_orders():
        if o.is_open:
            counts[(o.session_id, o.venue, o.status.name.lower())] += 1
    g = GaugeMetricFamily("fixgw_orders_open", "Open client orders, by state",
                          labels=["session", "venue", "state"])
    for key, n in sorted(counts.items()):
        g.add_metric(list(key), n)
    yield g


def _venues(states: Mapping[str, Any]) -> Iterator[Metric]:
    up = GaugeMetricFamily("fixgw_venue_up", "1 while orders are taken for the venue",
                           labels=["venue"])
    stream = GaugeMetricFamily("fixgw_venue_stream_connected",
                               "1 while the venue's private stream is connected",
                               labels=["venue"])
    age = GaugeMetricFamily("fixgw_venue_last_message_age_seconds",
                            "Since the venue's private stream last said something",
                            labels=["venue"])
    reconnects = CounterMetricFamily("fixgw_venue_stream_reconnects",
                                     "Reconnections of the venue's private stream",
                                     labels=["venue"])
    requests = CounterMetricFamily("fixgw_venue_requests", "REST requests sent to the venue",
                                   labels=["venue"])
    errors = CounterMetricFamily("fixgw_venue_errors", "REST requests that failed (no answer, "
                                 "5xx, ban)", labels=["venue"])
    limited = CounterMetricFamily("fixgw_venue_rate_limited", "429s the venue answered",
                                  labels=["venue"])
    usage = GaugeMetricFamily("fixgw_venue_rate_limit_usage",
                              "Share of the venue's request-rate window used (0..1)",
                              labels=["venue", "window"])
    banned = GaugeMetricFamily("fixgw_venue_banned_seconds", "Seconds the venue's ban still runs",
                               labels=["venue"])
    for name, st in sorted(states.items()):
        up.add_metric([name], 1 if st.up else 0)
        banned.add_metric([name], st.banned_for_s)
        if st.stream_connected is not None:
            stream.add_metric([name], 1 if st.stream_connected else 0)
            reconnects.add_metric([name], st.stream_reconnects)
            if st.last_message_age_s is not None:
                age.add_metric([name], st.last_message_age_s)
        if st.rest_requests or st.rest_reachable is not None:
            requests.add_metric([name], st.rest_requests)
            errors.add_metric([name], st.rest_errors)
            limited.add_metric([name], st.rest_rate_limited)
        for wname, w in sorted(st.rate_limits.items()):
            if w.limit:
                usage.add_metric([name, wname], w.used / w.limit)
    yield from (up, stream, age, reconnects, requests, errors, limited, usage, banned)
