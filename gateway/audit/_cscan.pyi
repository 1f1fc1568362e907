"""The C module of gateway/audit/_cscan.c (built by scripts/build_audit_native.py)."""

from collections.abc import Sequence

def configure(
    wanted: Sequence[int], length_tags: Sequence[int], repeated: Sequence[int]
) -> None: ...
def fields(raw: bytes) -> tuple[bytes | None, ...] | None: ...
def filelog_chunk(
    buf: bytes, final: bool, number: int, origin: object
) -> tuple[list[tuple[bytes, bytes, int, object]], int, int, int]: ...
