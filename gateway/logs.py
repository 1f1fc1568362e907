"""How ``fixgw`` writes its log: one line per record on stderr, as text or as JSON
(``--log-format json``: one object per line, for a log shipper), times in UTC.

The text format is ``2026-12-05T21:36:06.123Z INFO fixgw.session: <message>``; the JSON one
``{"ts": "...Z", "level": "INFO", "logger": "fixgw.session", "message": "...", "exc": "..."}``
(``exc`` only with a traceback). Secrets never reach a record: they are masked where the
messages are made (Logon passwords, venue keys and signatures).

A record is one line: what a client chose (a ClOrdID, a Text, a Logout's text) is written with
its control characters escaped (:func:`printable`, where the messages are made), so a newline
in it cannot start a line the gateway never wrote; the text format escapes any left in a
message as well (a traceback follows on lines of its own).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import TextIO

FORMATS = ("text", "json")


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """``text`` with its control characters (and Unicode line separators) as ``\\xNN`` /
    ``\\uNNNN`` escapes: someone else's words on one line of the log."""
    if not _CONTROL.search(text):
        return text
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text)


def _utc(record: logging.LogRecord) -> str:
    return (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z")


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = f"{_utc(record)} {record.levelname} {record.name}: {printable(record.getMessage())}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"ts": _utc(record), "level": record.levelname, "logger": record.name,
               "message": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def configure(verbose: bool, fmt: str = "text", stream: TextIO | None = None) -> None:
    """The root logger at DEBUG (``verbose``) or INFO, one handler on ``stream`` (stderr)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # alembic >= 1.17 logs every plugin it sets up at INFO when imported: noise before
    # anything the operator asked about (and ahead of a configuration error's own message)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
