"""Logging actions: RemoteLogAction / RemoteLogResponseAction (one PBDNSMessage per query or
answer, pydist/remotelog.py; a query and its answer share the message id, as in dnsdist) and
DnstapLogAction / DnstapLogResponseAction (one dnstap record, pydist/dnstap.py).

As dnsdist 1.7.3: the requestor is enciphered with ipEncryptKey (pydist/ipcipher.py) before the
alter function runs; the alter function gets the query (or answer) and the message, and may
change the message's fields. When the alter function fails (or the key is not 16 bytes), the
exception ends the query's processing in dnsdist: nothing is logged, the query (or answer)
is dropped and no drop counter moves (RuleFailed); the Lua side's Alter callable reports the
failure as False.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydist import ipcipher
from pydist.dnstap import DnstapMessage
from pydist.remotelog import QUERY, RESPONSE, PBMessage, RemoteLogger, new_message_id
from pydist.rules.actions import CONTINUE, Action
from pydist.rules.response_actions import R_CONTINUE, ResponseAction
from pydist.rules.selectors import RuleFailed

Alter = Callable[[Any, Any], bool]     # (dq or dr, message) -> False when the function failed


def message_id(dq: Any) -> bytes:
    """The query's message id, made when first needed and kept for its answer."""
    if dq.unique_id is None:
        dq.unique_id = new_message_id()
    return dq.unique_id


def _pb(kind: int, dq: Any, server_id: str, ip_key: bytes, alter: Alter | None,
        include_cname: bool = False) -> bytes:
    """The message to send; :raises RuleFailed: the query's processing ends (see the module)."""
    msg = PBMessage(kind, dq, message_id(dq), bytes(dq.data), include_cname)
    if server_id:
        msg.server_id = server_id
    if ip_key:
        try:
            msg.requestor = (ipcipher.encrypt_host(str(dq.remote[0]), ip_key),
                             int(dq.remote[1]))
        except ValueError as e:
            raise RuleFailed(str(e)) from None
    _alter(alter, dq, msg)
    return msg.serialize()


def _alter(alter: Alter | None, dq: Any, msg: Any) -> None:
    if alter is not None and not alter(dq, msg):
        raise RuleFailed("the alter function failed")


class RemoteLogAction(Action):
    def __init__(self, logger: RemoteLogger, server_id: str = "", ip_key: bytes = b"",
                 alter: Alter | None = None) -> None:
        self.logger, self.server_id, self.ip_key, self.alter = logger, server_id, ip_key, alter

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        self.logger.send(_pb(QUERY, dq, self.server_id, self.ip_key, self.alter))
        return CONTINUE

    def __str__(self) -> str:
        return f"remote log to {self.logger}"


class RemoteLogResponseAction(ResponseAction):
    def __init__(self, logger: RemoteLogger, server_id: str = "",
                 include_cname: bool = False, ip_key: bytes = b"",
                 alter: Alter | None = None) -> None:
        self.logger, self.server_id, self.include_cname = logger, server_id, include_cname
        self.ip_key, self.alter = ip_key, alter

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        self.logger.send(_pb(RESPONSE, dr, self.server_id, self.ip_key, self.alter,
                             self.include_cname))
        return R_CONTINUE

    def __str__(self) -> str:
        return f"remote log response to {self.logger}"


class DnstapLogAction(Action):
    def __init__(self, identity: str, logger: Any, alter: Alter | None = None) -> None:
        self.identity, self.logger, self.alter = identity, logger, alter

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        msg = DnstapMessage(self.identity, dq, bytes(dq.data), None, dq.now)
        _alter(self.alter, dq, msg)
        self.logger.send(msg.serialize())
        return CONTINUE

    def __str__(self) -> str:
        return f"remote log as dnstap to {self.logger}"


class DnstapLogResponseAction(ResponseAction):
    def __init__(self, identity: str, logger: Any, alter: Alter | None = None) -> None:
        self.identity, self.logger, self.alter = identity, logger, alter

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        msg = DnstapMessage(self.identity, dr, None, bytes(dr.data), dr.query_time)
        _alter(self.alter, dr, msg)
        self.logger.send(msg.serialize())
        return R_CONTINUE

    def __str__(self) -> str:
        return f"log response as dnstap to {self.logger}"
