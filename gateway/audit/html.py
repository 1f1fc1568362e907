"""``fixgw audit --html FILE``: one self-contained HTML file (no external resources, a few
lines of script for the filter): the summary, the findings by kind, the session events, and
each order's timeline -- every message of the order, in and out, with its fields named from
the data dictionary -- with the messages the findings are about highlighted.

Orders are rendered as the audit lets go of them, into a temporary file; the document is put
together at the end. Every order with findings is in it, and the first :data:`CLEAN_ORDERS`
orders without (a day's log has a great many of those: they are counted, not all drawn).
"""

from __future__ import annotations

import html
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from .chains import Chain
from .checker import Auditor, Session
from .decode import decode, message_name, value_meaning
from .findings import Finding, Findings, Kind
from .report import Outputs, describe
from .sources import format_stamp
from .states import status_name

CLEAN_ORDERS = 1000
"""Orders without findings drawn at most (all are counted in the summary)."""

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:20px} header p{margin:4px 0 0;color:#c6cbd6;font-size:12px}
main{padding:16px 24px;max-width:1400px}
section{background:#fff;border:1px solid #dde1e8;border-radius:6px;margin:0 0 16px;
padding:12px 16px}
h2{font-size:16px;margin:0 0 8px} h3{font-size:14px;margin:0}
table{border-collapse:collapse} td,th{padding:2px 10px 2px 0;text-align:left;vertical-align:top}
.num{text-align:right;font-variant-numeric:tabular-nums}
.clean{color:#137333;font-weight:600} .bad{color:#b3261e;font-weight:600}
ul.findings{margin:0;padding-left:18px} ul.findings li{margin:2px 0}
.kind{display:inline-block;background:#fde7e7;color:#b3261e;border-radius:3px;padding:0 5px;
font-family:ui-monospace,monospace;font-size:12px}
.event{display:inline-block;background:#e8eefc;color:#1a47b8;border-radius:3px;padding:0 5px;
font-family:ui-monospace,monospace;font-size:12px}
article.order{border:1px solid #dde1e8;border-radius:6px;margin:8px 0;padding:8px 12px}
article.order.has-findings{border-color:#e4a3a0;background:#fffafa}
article.order h3 .status{color:#555;font-weight:400}
ol.timeline{list-style:none;margin:6px 0 0;padding:0}
li.msg{border-left:4px solid #9aa5b8;margin:3px 0;padding:2px 8px}
li.msg.in{border-left-color:#4f7ad8} li.msg.out{border-left-color:#33a06f}
li.msg.flagged{background:#fde7e7;border-left-color:#b3261e}
.dir{display:inline-block;width:36px;font-weight:600;font-size:12px}
.in .dir{color:#4f7ad8} .out .dir{color:#33a06f}
time{font-family:ui-monospace,monospace;font-size:12px;color:#555;margin-right:8px}
.where{color:#888;font-size:12px}
p.note{margin:2px 0;color:#b3261e}
details summary{cursor:pointer;color:#555;font-size:12px}
table.fields td{font-family:ui-monospace,monospace;font-size:12px;padding-right:14px}
table.fields td.tag{color:#888;text-align:right}
label.filter{font-size:13px;user-select:none}
body.only-findings article.order:not(.has-findings){display:none}
"""

_SCRIPT = """
document.getElementById('only-findings').addEventListener('change', function (e) {
  document.body.classList.toggle('only-findings', e.target.checked);
});
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _short(where: str) -> str:
    """``file:line`` with the file's folder left out (the full path is in the JSON)."""
    return where.rsplit("/", 1)[-1]


def _t(v: bytes | None) -> str:
    return "none" if v is None else v.decode("utf-8", "replace")


class HtmlReport:
    """The ``--html`` document; ``add`` is a sink of :class:`~gateway.audit.report.Outputs`."""

    def __init__(self, path: Path, sessions: Mapping[str, Session], *,
                 message_types: frozenset[bytes] | None = None,
                 clean_limit: int = CLEAN_ORDERS) -> None:
        self.path = path
        self.sessions = sessions
        self.message_types = message_types
        self.clean_limit = clean_limit
        self.clean_drawn = 0
        self.clean_left_out = 0
        self.drawn = 0
        self._spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8",  # noqa: SIM115
                                                      prefix="fixgw-audit-html-")

    def add(self, chain: Chain) -> None:
        if not chain.findings:
            if self.clean_drawn >= self.clean_limit:
                self.clean_left_out += 1
                return
            self.clean_drawn += 1
        self.drawn += 1
        self._spool.write(self._order(chain))

    def _order(self, chain: Chain) -> str:
        s = self.sessions.get(chain.session)
        begin = s.begin if s is not None else "FIX.4.4"
        appl = s.appl_ver if s is not None else None
        local = s.local if s is not None else None
        cls = "order has-findings" if chain.findings else "order"
        ids = " ".join(_t(c) for c in chain.cl_ord_ids)
        out = [f'<article class="{cls}" id="order-{chain.number}" data-clordids="{_e(ids)}" '
               f'data-findings="{len(chain.findings)}">',
               f"<h3>{_e(describe(chain))} <span class=\"status\">&middot; "
               f"{_e(status_name(chain.status))}, CumQty {_e(_t(chain.cum_text))}, AvgPx "
               f"{_e(_t(chain.avg_text))}, {chain.n_fills} fills</span></h3>"]
        placed: set[int] = set()
        out.append('<ol class="timeline">')
        for stamp, raw, where, notes in chain.messages or []:
            assert isinstance(stamp, bytes) and isinstance(raw, bytes)
            fields = decode(raw, begin, appl)
            get = {f.tag: f for f in reversed(fields)}
            mt = get[35].value if 35 in get else "?"
            if self.message_types is not None and mt.encode() not in self.message_types:
                continue
            sender = get[49].value if 49 in get else "?"
            outgoing = local is not None and sender.encode() == local
            flagged = bool(notes)
            classes = "msg " + ("out" if outgoing else "in") + (" flagged" if flagged else "")
            head = _e(message_name(mt.encode(), begin, appl))
            if mt == "8" and 150 in get and 39 in get:
                et, st = get[150].value, get[39].value
                head += (f" <span>ExecType {_e(et)} "
                         f"({_e(value_meaning(150, et.encode(), begin, appl))}), OrdStatus "
                         f"{_e(st)} ({_e(value_meaning(39, st.encode(), begin, appl))})</span>")
            keys = [f"{name} {get[tag].value}" for tag, name in
                    ((11, "ClOrdID"), (41, "OrigClOrdID"), (37, "OrderID"), (17, "ExecID"),
                     (32, "LastQty"), (31, "LastPx"), (14, "CumQty"), (151, "LeavesQty"),
                     (6, "AvgPx"), (38, "OrderQty"), (44, "Price"), (58, "Text"))
                    if tag in get]
            seq = get[34].value if 34 in get else "?"
            target = get[56].value if 56 in get else "?"
            out.append(
                f'<li class="{classes}"><span class="dir">{"out" if outgoing else "in"}</span>'
                f"<time>{_e(format_stamp(stamp))}</time><b>{head}</b> "
                f"<span class=\"keys\">{_e(' · '.join(keys))}</span> "
                f'<span class="where">{_e(sender)} &rarr; {_e(target)}, MsgSeqNum {_e(seq)}, '
                f"{_e(_short(str(where)))}</span>")
            for note in notes or []:  # type: ignore[attr-defined]
                assert isinstance(note, Finding)
                placed.add(id(note))
                out.append(f'<p class="note"><span class="kind">{_e(note.kind.value)}</span> '
                           f"{_e(note.text)}</p>")
            out.append("<details><summary>fields</summary><table class=\"fields\">")
            for fld in fields:
                meaning = f" ({_e(fld.meaning)})" if fld.meaning else ""
                out.append(f'<tr><td class="tag">{fld.tag}</td><td>{_e(fld.name)}</td>'
                           f"<td>{_e(fld.value)}{meaning}</td></tr>")
            out.append("</table></details></li>")
        out.append("</ol>")
        for f in chain.findings:
            if id(f) not in placed:
                out.append(f'<p class="note"><span class="kind">{_e(f.kind.value)}</span> '
                           f"{_e(f.text)}</p>")
        out.append("</article>\n")
        return "\n".join(out)

    def write(self, auditor: Auditor, outputs: Outputs, findings: Findings,
              inputs: list[str], elapsed: float, extra: list[str] | None = None) -> None:
        """Put the document together at :attr:`path`."""
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        total = findings.total
        with_findings = len({f.order for f in findings.kept if f.order is not None})
        verdict = (f'<span class="bad">{total:,} findings</span>' if total
                   else '<span class="clean">no findings</span>')
        with open(self.path, "w", encoding="utf-8") as out:
            out.write("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                      "<title>fixgw audit</title><meta name=\"viewport\" "
                      f"content=\"width=device-width\"><style>{_CSS}</style></head><body>\n")
            out.write(f"<header><h1>fixgw audit</h1><p>{_e(', '.join(inputs))} &middot; "
                      f"written {now}</p></header><main>\n")
            out.write('<section id="summary"><h2>Summary</h2><table>')
            rows = [("verdict", verdict),
                    ("messages", f"{auditor.messages:,}"),
                    ("sessions", f"{len(auditor.sessions)}"),
                    ("orders", f"{outputs.orders:,} ({outputs.open_orders:,} open at the "
                               f"end, {with_findings:,} with findings)"),
                    ("fills", f"{outputs.fills:,}"),
                    ("read in", f"{elapsed:.1f} s")]
            for name, value in rows:
                out.write(f'<tr><th>{_e(name)}</th><td id="summary-{name.replace(" ", "-")}">'
                          f"{value}</td></tr>")
            out.write("</table>")
            for line in extra or []:
                out.write(f"<p>{_e(line)}</p>")
            out.write("</section>\n")
            self._write_sessions(out, auditor, findings)
            self._write_findings(out, findings)
            out.write('<section id="orders"><h2>Orders</h2>')
            out.write('<p><label class="filter"><input type="checkbox" id="only-findings"> '
                      "only orders with findings</label> &middot; "
                      f"{self.drawn:,} drawn")
            if self.clean_left_out:
                out.write(f", {self.clean_left_out:,} orders without findings left out "
                          f"(the first {self.clean_limit:,} are drawn)")
            out.write("</p>\n")
            self._spool.seek(0)
            shutil.copyfileobj(self._spool, out)
            self._spool.close()
            out.write(f"</section></main><script>{_SCRIPT}</script></body></html>\n")

    def _write_sessions(self, out: IO[str], auditor: Auditor, findings: Findings) -> None:
        out.write('<section id="sessions"><h2>Sessions</h2><table><tr><th>session</th>'
                  "<th class=\"num\">messages</th><th class=\"num\">in</th>"
                  "<th class=\"num\">out</th><th class=\"num\">orders</th>"
                  "<th class=\"num\">fills</th><th>from</th><th>to</th></tr>")
        for s in auditor.sessions.values():
            out.write(f'<tr class="session"><td>{_e(s.key)}</td>'
                      f'<td class="num">{s.messages:,}</td><td class="num">{s.incoming:,}</td>'
                      f'<td class="num">{s.messages - s.incoming:,}</td>'
                      f'<td class="num">{s.book.orders:,}</td>'
                      f'<td class="num">{s.book.fills:,}</td>'
                      f"<td>{_e(format_stamp(s.first_stamp))}</td>"
                      f"<td>{_e(format_stamp(s.last_stamp))}</td></tr>")
        out.write("</table>")
        if findings.events:
            out.write('<h3>Session events</h3><ul class="findings" id="events">')
            for e in findings.events:
                out.write(f'<li class="event-{_e(e.kind)}"><span class="event">{_e(e.kind)}'
                          f"</span> <time>{_e(format_stamp(e.stamp))}</time> {_e(e.session)}: "
                          f'{_e(e.text)} <span class="where">{_e(_short(e.where))}</span></li>')
            out.write("</ul>")
        out.write("</section>\n")

    def _write_findings(self, out: IO[str], findings: Findings) -> None:
        out.write('<section id="findings"><h2>Findings</h2>')
        if not findings.total:
            out.write('<p class="clean">No findings.</p></section>\n')
            return
        out.write("<table>")
        for kind in Kind:
            n = findings.counts.get(kind)
            if n:
                out.write(f'<tr class="kind-count" data-kind="{kind.value}"><td>'
                          f'<span class="kind">{kind.value}</span></td>'
                          f'<td class="num">{n:,}</td><td>{_e(kind.meaning)}</td></tr>')
        out.write('</table><ul class="findings" id="finding-list">')
        for f in findings.kept:
            link = (f' <a href="#order-{f.order}">order #{f.order}</a>'
                    if f.order is not None else "")
            raw = ""
            if f.raw is not None and f.order is None:
                shown = f.raw.replace(b"\x01", b"|").decode("utf-8", "replace")
                raw = f"<details><summary>message</summary><code>{_e(shown)}</code></details>"
            out.write(f'<li class="finding" data-kind="{f.kind.value}"><span class="kind">'
                      f"{f.kind.value}</span> <time>{_e(format_stamp(f.stamp))}</time> "
                      f"{_e(f.session)}{link}: {_e(f.text)} "
                      f'<span class="where">{_e(_short(f.where))}</span>{raw}</li>')
        out.write("</ul>")
        if len(findings.kept) < findings.total:
            out.write(f"<p>The first {len(findings.kept):,} of {findings.total:,} are "
                      "listed.</p>")
        out.write("</section>\n")
