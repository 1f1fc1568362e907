"""``fixgw audit``: the inputs, the audit and its outputs put together (the command line parses
the arguments and wires in the store, :mod:`gateway.cli`).

Exit codes: 0 when the audit finds nothing, 1 when it has findings, 2 on bad usage or an
input that cannot be read (the message names the file and the line).
"""

from __future__ import annotations

import contextlib
import gc
import heapq
import operator
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO, TypeVar

from .chains import Chain
from .checker import Auditor, SessionFilter
from .errors import InputError
from .findings import Finding, Findings
from .html import HtmlReport
from .report import Outputs, print_lines, story_text, summary_text, write_json
from .sources import FileSource, Record, StoreSource, expand, format_stamp
from .storecheck import StoreComparer, StoreView

EXIT_CLEAN = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
PROGRESS_EVERY = 1 << 16
"""Messages between two updates of the progress line."""
T = TypeVar("T")
GC_THRESHOLD = 50_000
"""The young generation's threshold while the audit reads (CPython's default is 700)."""


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """Every message makes a few short-lived tuples, none of them in a reference cycle: with
    the default threshold the cyclic collector runs every few hundred messages and walks every
    object alive (10-15% of the audit's time, ``perf``). What was alive before is set aside
    (:func:`gc.freeze`) and the young threshold raised, until the audit is done."""
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, 20, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


@dataclass
class AuditOptions:
    paths: list[str]
    session: str | None = None
    since: bytes = b""
    until: bytes = b""
    message_types: frozenset[bytes] | None = None
    json_path: Path | None = None
    html_path: Path | None = None
    order: str | None = None
    follow: bool = False
    progress: bool | None = None
    """Show a progress line on stderr; None: when stderr is a terminal."""
    store_name: str = "store"
    extra_sinks: list[Callable[[Chain], None]] = field(default_factory=list)
    fast: bool = True
    """Let the compiled fast path check what it can, where it is built (the tests compare
    the audit with it and without it)."""


def _merged(sources: list[FileSource | StoreSource]) -> Iterable[Record]:
    """The records of every input in time order (each input's own order kept; ties by input
    order)."""
    if len(sources) == 1:
        return sources[0].records()
    return heapq.merge(*(s.records() for s in sources), key=operator.itemgetter(0))


def _round_robin(sources: list[FileSource], stopped: Callable[[], bool]
                 ) -> Iterator[Record | None]:
    """Followed files, a record of each in turn (None: all were idle)."""
    live = [s.follow(stopped) for s in sources]
    while live:
        idle = True
        for gen in list(live):
            try:
                record = next(gen)
            except StopIteration:
                live.remove(gen)
                continue
            if record is not None:
                idle = False
                yield record
        if idle:
            yield None


def _with_progress(records: Iterable[T], err: TextIO) -> Iterator[T]:
    """``records`` (records, None from a followed file, or batches of messages), with a
    progress line on ``err`` every :data:`PROGRESS_EVERY` messages or so."""
    start = time.monotonic()
    n = shown = 0
    for record in records:
        if isinstance(record, tuple):
            n += 1
            stamp = record[0]
        elif record is not None:  # a batch
            n += len(record)  # type: ignore[arg-type]
            stamp = record.last_stamp()  # type: ignore[attr-defined]
        if n - shown >= PROGRESS_EVERY:
            shown = n - n % PROGRESS_EVERY
            rate = n / max(time.monotonic() - start, 1e-9)
            err.write(f"\r{n:,} messages ({rate:,.0f}/s) {format_stamp(stamp)}   ")
            err.flush()
        yield record
    if n >= PROGRESS_EVERY:
        err.write("\r" + " " * 70 + "\r")
        err.flush()


def _message_log_empty(store: StoreView) -> bool:
    """Whether the store's message_log has no row at all (read unfiltered, as StoreSource
    reads it: --session, --since and --until are the auditor's). The reader is closed at
    once, its connection given back (not left to the garbage collector)."""
    rows = store.message_log(None, None, None)
    try:
        return next(rows, None) is None
    finally:
        close = getattr(rows, "close", None)
        if close is not None:
            close()


def run_audit(opts: AuditOptions, *, store: StoreView | None = None, out: TextIO | None = None,
              err: TextIO | None = None, stopped: Callable[[], bool] = lambda: False) -> int:
    out = out if out is not None else sys.stdout
    err = err if err is not None else sys.stderr
    started = time.monotonic()
    try:
        paths = expand(opts.paths)
    except InputError as exc:
        print_lines(err, f"fixgw audit: {exc}")
        return EXIT_USAGE
    files = []
    for p in paths:
        src = FileSource(p)
        if src.is_event_log:
            print_lines(err, f"fixgw audit: {p}: an event log, not messages: left out")
            continue
        files.append(src)
    sources: list[FileSource | StoreSource] = list(files)
    inputs = [s.name for s in files]
    if not files:
        if store is None:
            print_lines(err, "fixgw audit: nothing to read: name log files or --store URL")
            return EXIT_USAGE
        if opts.follow:
            print_lines(err, "fixgw audit: --follow reads log files, not the store")
            return EXIT_USAGE
        try:
            empty = _message_log_empty(store)
        except InputError as exc:
            print_lines(err, f"fixgw audit: {exc}")
            return EXIT_USAGE
        if empty:
            print_lines(err, f"fixgw audit: {opts.store_name} has no message log rows: a gateway "
                        "with a log_dir logs the messages to files only (the default of "
                        "[gateway] message_log); name its log directory")
            return EXIT_USAGE
        sources = [StoreSource(store, opts.store_name)]
        inputs = [f"{opts.store_name} (message_log)"]

    findings = Findings(since=opts.since)
    sinks: list[Callable[[Chain], None]] = list(opts.extra_sinks)
    comparer = None
    if store is not None:
        # the store's own message log is its whole record: read to its end, an order of the
        # store after its last message (a gateway that stopped logging there) is a finding
        comparer = StoreComparer(store, findings, opts.store_name,
                                 open_end=not files and not opts.until)
        sinks.append(comparer.add)
    stories: list[tuple[Chain, str]] = []
    auditor_ref: list[Auditor] = []
    if opts.order is not None:
        wanted = opts.order.encode()

        def story(chain: Chain) -> None:
            if wanted in chain.cl_ord_ids or wanted == chain.order_id:
                s = auditor_ref[0].sessions.get(chain.session)
                stories.append((chain, story_text(chain, s, opts.message_types)))

        sinks.append(story)
    outputs = Outputs(json_wanted=opts.json_path is not None, sinks=sinks)
    auditor = Auditor(findings, outputs.add,
                      session_filter=SessionFilter(opts.session) if opts.session else None,
                      until=opts.until,
                      keep_messages=opts.html_path is not None or opts.order is not None,
                      on_summary=None if sinks else outputs.add_summary, fast=opts.fast)
    auditor_ref.append(auditor)
    html = None
    if opts.html_path is not None:
        html = HtmlReport(opts.html_path, auditor.sessions, message_types=opts.message_types)
        outputs.sinks.insert(0, html.add)
    if opts.follow:
        def shout(f: Finding) -> None:
            order = f" order #{f.order}" if f.order is not None else ""
            print_lines(out, f"{f.session} {format_stamp(f.stamp)} {f.where} [{f.kind.value}]"
                        f"{order}: {f.text}")

        findings.listeners.append(shout)
        records: Iterable[Record | None] = _round_robin(files, stopped)
    else:
        records = _merged(sources)
    show_progress = opts.progress if opts.progress is not None else err.isatty()
    batched = (auditor.engine is not None and not opts.follow and len(sources) == 1
               and isinstance(sources[0], FileSource))
    if show_progress and not opts.follow:
        records = _with_progress(records, err)
    try:
        with _fewer_collections():
            try:
                if batched:  # one file: the compiled audit reads its batches
                    assert isinstance(sources[0], FileSource)
                    items = sources[0].items()
                    auditor.feed_batches(_with_progress(items, err) if show_progress
                                         else items)
                else:
                    auditor.feed(records)
            except KeyboardInterrupt:
                if not opts.follow:
                    raise
            auditor.finish()
        if comparer is not None:
            comparer.finish()
    except InputError as exc:
        print_lines(err, f"fixgw audit: {exc}")
        return EXIT_USAGE
    if (auditor.messages == 0 and auditor.skipped == 0 and not opts.follow
            and not opts.since and not opts.until):
        # an audit of nothing is not clean (a gateway with message_log = "store" leaves its
        # messages files empty: its messages are in its store)
        print_lines(err, f"fixgw audit: no FIX message in {', '.join(inputs)}")
        return EXIT_USAGE
    elapsed = time.monotonic() - started
    extra = []
    if comparer is not None:
        extra.append(f"compared with {opts.store_name}: {comparer.compared:,} orders")
    if opts.json_path is not None:
        write_json(opts.json_path, auditor, outputs, findings, inputs, elapsed,
                   {"store": opts.store_name, "store_orders_compared": comparer.compared}
                   if comparer is not None else None)
    if html is not None:
        html.write(auditor, outputs, findings, inputs, elapsed, extra)
    if opts.order is not None:
        if not stories:
            print_lines(err, f"fixgw audit: no order with ClOrdID or OrderID {opts.order} in "
                        f"{', '.join(inputs)}")
            return EXIT_USAGE
        for _, text in stories:
            print_lines(out, text)
            print_lines(out, "")
        return EXIT_FINDINGS if any(c.findings for c, _ in stories) else EXIT_CLEAN
    print_lines(out, summary_text(auditor, outputs, findings, inputs, elapsed))
    for line in extra:
        print_lines(out, line)
    return EXIT_FINDINGS if findings.total else EXIT_CLEAN
