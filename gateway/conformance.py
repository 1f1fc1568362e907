"""The conformance application the QuickFIX acceptance scripts expect (see
../shared/fix-acceptance/README.md), behind a real :class:`~gateway.server.acceptor.Acceptor`.

Sessions: ISLD<->TW44 (FIX.4.4), ISLD<->TW50 (FIXT.1.1, FIX.5.0), ISLD<->TW50SP2 (FIXT.1.1,
FIX.5.0SP2); sequence numbers reset on every Logon; full dictionary validation. The application
echoes NewOrderSingle (unless PossResend=Y for a ClOrdID already seen on the session since its
Logon) and SecurityDefinition, and answers everything else with BusinessMessageReject.
"""

from __future__ import annotations

from gateway.fix import dictionary
from gateway.fix.message import Message
from gateway.fix.session import Session, SessionID, SessionSettings
from gateway.fix.tags import BR_UNSUPPORTED_MESSAGE_TYPE
from gateway.fix.validation import ValidationSettings, ordered_fields
from gateway.server.acceptor import Limits, SessionDef


class EchoApplication:
    def __init__(self) -> None:
        self._seen: dict[SessionID, set[bytes]] = {}

    def on_logon(self, session: Session, now: float) -> None:
        self._seen[session.sid] = set()

    def on_logout(self, session: Session, now: float) -> None:
        self._seen.pop(session.sid, None)

    def on_message(self, session: Session, message: Message, now: float) -> None:
        msg_type = message.msg_type
        if msg_type not in (b"D", b"d"):
            session.business_reject(message, BR_UNSUPPORTED_MESSAGE_TYPE, now)
            return
        if msg_type == b"D":
            seen = self._seen.setdefault(session.sid, set())
            cl_ord_id = message.get(11) or b""
            if message.header.get(97) == b"Y" and cl_ord_id in seen:
                return
            seen.add(cl_ord_id)
        dd = session._app_dd_for(session._target_appl_ver)
        mdef = dd.messages.get(msg_type)
        body = ordered_fields(message, mdef.layout if mdef else None)
        # session.send drops the header fields it fills itself (8, 9, 34, 35, 43, 49, ...)
        session.send(msg_type, body, now, header_extra=message.header.fields)


def conformance_sessions(appl_ver_id_in_business_reject: bool = True) -> list[SessionDef]:
    strict = ValidationSettings.strict()
    fixt = dictionary.standard("FIXT.1.1")
    out = []
    for begin, target, appl in (
        ("FIX.4.4", "TW44", None),
        ("FIXT.1.1", "TW50", "FIX.5.0"),
        ("FIXT.1.1", "TW50SP2", "FIX.5.0SP2"),
    ):
        settings = SessionSettings(
            SessionID(begin, "ISLD", target),
            default_appl_ver_id=appl,
            reset_on_logon=True,
            appl_ver_id_in_business_reject=appl_ver_id_in_business_reject,
            validation=strict,
        )
        if appl is None:
            dd = dictionary.standard(begin)
            out.append(SessionDef(settings, dd, {begin: dd}, limits=Limits()))
        else:
            apps = {name: dictionary.standard(name) for name in ("FIX.5.0", "FIX.5.0SP2")}
            out.append(SessionDef(settings, fixt, apps, limits=Limits()))
    return out
