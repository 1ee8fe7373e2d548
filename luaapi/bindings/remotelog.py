"""Remote logging from Lua, as dnsdist 1.7.3: newRemoteLogger with RemoteLogAction and
RemoteLogResponseAction (protobuf), newFrameStreamTcpLogger / newFrameStreamUnixLogger with
DnstapLogAction and DnstapLogResponseAction (dnstap). An alterFunction is accepted and warned
about (it is not called)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:   # the loggers (asyncio, dnslib) load only when a config makes one
    from pydist.dnstap import FrameStreamLogger
    from pydist.remotelog import RemoteLogger

LOGGER = "St10shared_ptrI21RemoteLoggerInterfaceE"


class RemoteLoggerHandle:
    """A protobuf or a frame-stream logger, as Lua holds it."""

    def __init__(self, logger: RemoteLogger | FrameStreamLogger) -> None:
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
        from pydist.remotelog import RemoteLogger
        logger = RemoteLogger(host, port, 2.0 if timeout is None else as_float(timeout),
                              100 if queued is None else as_int(queued),
                              1.0 if wait is None else as_float(wait), reg.log)
        return started(logger)
    rt.fn("newRemoteLogger", new_remote_logger)

    def started(logger: Any) -> RemoteLoggerHandle:
        """Loggers connect only when serving (never in --check-config or the console client)."""
        if reg.mode == SERVE:
            reg.remote_loggers.append(logger)
            if reg.engine is not None:
                logger.start(reg.engine.loop)
        return RemoteLoggerHandle(logger)

    def frame_stream_tcp(addr: Any, opts: Any = None, *a: Any) -> RemoteLoggerHandle:
        text = as_str(addr)
        try:
            host, port = parse_address(text, 0)
        except AddressError as e:
            raise PdnsError(str(e)) from None
        options = table_to_dict(opts) if opts is not None else {}
        from pydist.dnstap import FrameStreamLogger
        return started(FrameStreamLogger(text, host, port, options))
    rt.fn("newFrameStreamTcpLogger", frame_stream_tcp)

    def frame_stream_unix(path: Any, opts: Any = None, *a: Any) -> RemoteLoggerHandle:
        options = table_to_dict(opts) if opts is not None else {}
        from pydist.dnstap import FrameStreamLogger
        return started(FrameStreamLogger(as_str(path), None, 0, options))
    rt.fn("newFrameStreamUnixLogger", frame_stream_unix)

    def logger_of(value: Any) -> Any:
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
        logger = logger_of(logger)
        from pydist.rules.remotelog import RemoteLogAction
        return ActionHandle(RemoteLogAction(logger, server_id(opts)))
    rt.fn("RemoteLogAction", log_action)

    def log_response(logger: Any, alter: Any = None, cname: Any = None, opts: Any = None,
                     *a: Any) -> ActionHandle:
        note_alter("RemoteLogResponseAction", alter)
        include = False if cname is None else as_bool(cname)
        logger = logger_of(logger)
        from pydist.rules.remotelog import RemoteLogResponseAction
        return ActionHandle(RemoteLogResponseAction(logger, server_id(opts), include))
    rt.fn("RemoteLogResponseAction", log_response)

    def dnstap_action(response: bool) -> Any:
        name = "DnstapLogResponseAction" if response else "DnstapLogAction"

        def make(identity: Any, logger: Any, alter: Any = None, *a: Any) -> ActionHandle:
            note_alter(name, alter)
            logger = logger_of(logger)
            from pydist.rules import remotelog as actions   # loaded once a logger exists
            cls = actions.DnstapLogResponseAction if response else actions.DnstapLogAction
            return ActionHandle(cls(as_str(identity), logger))
        return make
    rt.fn("DnstapLogAction", dnstap_action(False))
    rt.fn("DnstapLogResponseAction", dnstap_action(True))
