"""Logging actions: RemoteLogAction / RemoteLogResponseAction (one PBDNSMessage per query or
answer, pydist/remotelog.py; a query and its answer share the message id, as in dnsdist) and
DnstapLogAction / DnstapLogResponseAction (one dnstap record, pydist/dnstap.py)."""
from __future__ import annotations

from typing import Any

from pydist.dnstap import dnstap_record
from pydist.remotelog import QUERY, RESPONSE, RemoteLogger, new_message_id, pb_message
from pydist.rules.actions import CONTINUE, Action
from pydist.rules.response_actions import R_CONTINUE, ResponseAction


def message_id(dq: Any) -> bytes:
    """The query's message id, made when first needed and kept for its answer."""
    if dq.unique_id is None:
        dq.unique_id = new_message_id()
    return dq.unique_id


class RemoteLogAction(Action):
    def __init__(self, logger: RemoteLogger, server_id: str = "") -> None:
        self.logger, self.server_id = logger, server_id

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        self.logger.send(pb_message(QUERY, dq, message_id(dq), bytes(dq.data), self.server_id))
        return CONTINUE

    def __str__(self) -> str:
        return f"remote log to {self.logger}"


class RemoteLogResponseAction(ResponseAction):
    def __init__(self, logger: RemoteLogger, server_id: str = "",
                 include_cname: bool = False) -> None:
        self.logger, self.server_id, self.include_cname = logger, server_id, include_cname

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        self.logger.send(pb_message(RESPONSE, dr, message_id(dr), bytes(dr.data),
                                    self.server_id, include_cname=self.include_cname))
        return R_CONTINUE

    def __str__(self) -> str:
        return f"remote log response to {self.logger}"


class DnstapLogAction(Action):
    def __init__(self, identity: str, logger: Any) -> None:
        self.identity, self.logger = identity, logger

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        self.logger.send(dnstap_record(self.identity, dq, bytes(dq.data), None, dq.now))
        return CONTINUE

    def __str__(self) -> str:
        return f"remote log as dnstap to {self.logger}"


class DnstapLogResponseAction(ResponseAction):
    def __init__(self, identity: str, logger: Any) -> None:
        self.identity, self.logger = identity, logger

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        self.logger.send(dnstap_record(self.identity, dr, None, bytes(dr.data), dr.query_time))
        return R_CONTINUE

    def __str__(self) -> str:
        return f"log response as dnstap to {self.logger}"
