"""What the audit says when an input cannot be read. Kept out of the modules compiled by mypyc
(gateway.audit.native): the store's readers subclass it in interpreted code, which a compiled
class does not allow."""

from __future__ import annotations


class InputError(Exception):
    """An input that cannot be read: missing, not a FIX log, a broken gzip stream. Says which
    file and, where it knows, which line."""

    def __init__(self, name: str, line: int | None, reason: str) -> None:
        where = f"{name}:{line}" if line is not None else name
        super().__init__(f"{where}: {reason}")
        self.name = name
        self.line = line
        self.reason = reason
