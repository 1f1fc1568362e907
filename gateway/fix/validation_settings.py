"""The per-session switches of :mod:`.validation`.

Kept out of the modules compiled by mypyc (gateway/native.py): the configuration validates
this record with pydantic, which builds a dataclass's instances through their ``__dict__``,
and an instance of a compiled class has none.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    """Per-session validation switches (QuickFIX's names in brackets). Declared here once: the
    configuration's ``[session.validation]`` is this, validated by pydantic."""

    check_fields_out_of_order: bool = True  # [ValidateFieldsOutOfOrder]
    check_fields_have_values: bool = True  # [ValidateFieldsHaveValues]
    check_user_defined_fields: bool = False  # [ValidateUserDefinedFields] tags >= 5000
    reject_unknown_fields: bool = False  # tag not in the dictionary -> 373=0
    reject_fields_not_in_message: bool = True  # [AllowUnknownMsgFields]=N -> 373=2
    check_required: bool = True
    check_values: bool = True  # data formats and enumerations
    max_id_length: int = 64
    """Longest identifier the gateway keeps or echoes (ClOrdID, Account, Symbol, ... see
    :data:`.validation.ID_TAGS`); longer gets 373=5 naming the tag."""
    max_field_length: int = 1024
    """Longest value of any other field but length-prefixed data (Text included)."""

    def __post_init__(self) -> None:
        if not 8 <= self.max_id_length <= 255:
            raise ValueError("max_id_length must be 8..255 (the store keeps identifiers of up "
                             "to 255 characters)")
        if self.max_field_length < 64:
            raise ValueError("max_field_length must be at least 64")

    @classmethod
    def strict(cls) -> ValidationSettings:
        """QuickFIX's defaults with full dictionary validation (the acceptance suite's)."""
        return cls(check_user_defined_fields=True, reject_unknown_fields=True)
