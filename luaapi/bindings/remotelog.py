"""newRemoteLogger, RemoteLogAction and RemoteLogResponseAction: protobuf logging as dnsdist
1.7.3 does it. An alterFunction is accepted and warned about (it is not called)."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.rules import ActionHandle
from luaapi.convert import (
    as_bool,
    as_float,
    as_int,
    as_str,
    fail,
    is_function,
    table_to_dict,
)
from luaapi.errors import PdnsError
from pydist.dns.netmask import AddressError, parse_address
from pydist.registry import SERVE
from pydist.remotelog import RemoteLogger
from pydist.rules.remotelog import RemoteLogAction, RemoteLogResponseAction

LOGGER = "St10shared_ptrI21RemoteLoggerInterfaceE"


class RemoteLoggerHandle:
    def __init__(self, logger: RemoteLogger) -> None:
        self.logger = logger

    def toString(self, *a: Any) -> str:
        return str(self.logger)

    tostring = toString


def register(rt: Any) -> None:
    reg = rt.registry

    def new_remote_logger(addr: Any, timeout: Any = None, queued: Any = None,
                          wait: Any = None, *a: Any) -> RemoteLoggerHandle:
        try:
            host, port = parse_address(as_str(addr), 0)
        except AddressError as e:
            raise PdnsError(str(e)) from None
        logger = RemoteLogger(host, port, 2.0 if timeout is None else as_float(timeout),
                              100 if queued is None else as_int(queued),
                              1.0 if wait is None else as_float(wait), reg.log)
        if reg.mode == SERVE:
            reg.remote_loggers.append(logger)
            if reg.engine is not None:
                logger.start(reg.engine.loop)
        return RemoteLoggerHandle(logger)
    rt.fn("newRemoteLogger", new_remote_logger)

    def logger_of(value: Any) -> RemoteLogger:
        if not isinstance(value, RemoteLoggerHandle):
            raise fail(value, LOGGER)
        return value.logger

    def note_alter(name: str, alter: Any) -> None:
        if is_function(alter):
            note = f"the alter function of {name}()"
            if note not in reg.unsupported:
                reg.unsupported.append(note)

    def server_id(opts: Any) -> str:
        options = table_to_dict(opts) if opts is not None else {}
        return as_str(options.get("serverID", ""))

    def log_action(logger: Any, alter: Any = None, opts: Any = None, *a: Any) -> ActionHandle:
        note_alter("RemoteLogAction", alter)
        return ActionHandle(RemoteLogAction(logger_of(logger), server_id(opts)))
    rt.fn("RemoteLogAction", log_action)

    def log_response(logger: Any, alter: Any = None, cname: Any = None, opts: Any = None,
                     *a: Any) -> ActionHandle:
        note_alter("RemoteLogResponseAction", alter)
        include = False if cname is None else as_bool(cname)
        return ActionHandle(RemoteLogResponseAction(logger_of(logger), server_id(opts), include))
    rt.fn("RemoteLogResponseAction", log_response)
