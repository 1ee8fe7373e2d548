"""Remote logging from Lua, as dnsdist 1.7.3: newRemoteLogger with RemoteLogAction and
RemoteLogResponseAction (protobuf), newFrameStreamTcpLogger / newFrameStreamUnixLogger with
DnstapLogAction and DnstapLogResponseAction (dnstap), with their alter functions (given the
query or answer and the message object: DNSDistProtoBufMessage's and DnstapMessage's methods as
1.7.3 has them) and RemoteLogAction's ipEncryptKey; makeIPCipherKey."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from luaapi.bindings.luacall import protected_caller
from luaapi.bindings.objects import ComboAddressHandle, NetmaskHandle, to_dnsname
from luaapi.bindings.response_rules import DRHandle
from luaapi.bindings.rules import ActionHandle, DQHandle
from luaapi.convert import (
    as_bool,
    as_float,
    as_int,
    as_str,
    fail,
    is_function,
    table_to_dict,
    table_to_list,
)
from luaapi.errors import PdnsError
from pydist.dns.netmask import AddressError, format_address, parse_address, parse_netmask

if TYPE_CHECKING:   # the loggers (asyncio, dnslib) load only when a config makes one
    from pydist.dnstap import DnstapMessage, FrameStreamLogger
    from pydist.remotelog import PBMessage, RemoteLogger

LOGGER = "St10shared_ptrI21RemoteLoggerInterfaceE"


class RemoteLoggerHandle:
    """A protobuf or a frame-stream logger, as Lua holds it."""

    def __init__(self, logger: RemoteLogger | FrameStreamLogger) -> None:
        self.logger = logger

    def toString(self, *a: Any) -> str:
        return str(self.logger)

    tostring = toString


def _address(v: Any) -> tuple[str, int]:
    if isinstance(v, ComboAddressHandle):
        return v.host, v.port
    raise fail(v, "ComboAddress")


def _parsed(text: Any) -> tuple[str, int]:
    try:
        return parse_address(as_str(text), 0)
    except AddressError as e:
        raise PdnsError(str(e)) from None


class PBMessageHandle:
    """DNSDistProtoBufMessage as an alter function sees it: 1.7.3's setters, nothing else."""

    def __init__(self) -> None:
        self._msg: PBMessage | None = None

    def setTag(self, tag: Any, *a: Any) -> None:
        self._msg.tags.append(as_str(tag))

    def setTagArray(self, tags: Any, *a: Any) -> None:
        self._msg.tags.extend(as_str(t) for t in table_to_list(tags))

    def setProtobufResponseType(self, sec: Any = None, usec: Any = None, *a: Any) -> None:
        from pydist.remotelog import RESPONSE
        self._msg.kind = RESPONSE
        self._msg.query_time = (0 if sec is None else as_int(sec),
                                0 if usec is None else as_int(usec))

    def addResponseRR(self, name: Any, rtype: Any, rclass: Any, ttl: Any, blob: Any,
                      *a: Any) -> None:
        self._msg.add_rr(str(to_dnsname(as_str(name))), as_int(rtype), as_int(rclass),
                         as_int(ttl), as_str(blob).encode("latin-1"))

    def setEDNSSubnet(self, subnet: Any, *a: Any) -> None:
        if not isinstance(subnet, NetmaskHandle):
            raise fail(subnet, "Netmask")
        self._msg.ecs = parse_netmask(str(subnet.net)).network_address.packed

    def setQuestion(self, name: Any, qtype: Any, qclass: Any, *a: Any) -> None:
        self._msg.question = (str(to_dnsname(name)), as_int(qtype), as_int(qclass))

    def setBytes(self, n: Any, *a: Any) -> None:
        self._msg.bytes = as_int(n)

    def setTime(self, sec: Any, usec: Any, *a: Any) -> None:
        self._msg.time = (as_int(sec), as_int(usec))

    def setQueryTime(self, sec: Any, usec: Any, *a: Any) -> None:
        self._msg.query_time = (as_int(sec), as_int(usec))

    def setResponseCode(self, rcode: Any, *a: Any) -> None:
        self._msg.rcode = as_int(rcode) & 0xFF

    def setRequestor(self, addr: Any, *a: Any) -> None:
        self._msg.requestor = _address(addr)

    def setRequestorFromString(self, text: Any, *a: Any) -> None:
        self._msg.requestor = _parsed(text)

    def setResponder(self, addr: Any, *a: Any) -> None:
        self._msg.responder = _address(addr)

    def setResponderFromString(self, text: Any, *a: Any) -> None:
        self._msg.responder = _parsed(text)

    def setServerIdentity(self, text: Any, *a: Any) -> None:
        self._msg.server_id = as_str(text)


class DnstapMessageHandle:
    """DnstapMessage as an alter function sees it: setExtra only, as in 1.7.3."""

    def __init__(self) -> None:
        self._msg: DnstapMessage | None = None

    def setExtra(self, text: Any, *a: Any) -> None:
        self._msg.extra.append(as_str(text).encode("latin-1"))


def alter_caller(rt: Any, f: Any, dq_cls: type, msg_cls: type) -> Any:
    """f(dq, message) under the Lua guard, as a Python callable: (dq, message) -> False when it
    failed (dnsdist then ends the query's processing, with a line in verbose mode only)."""
    handle = msg_cls()
    call = protected_caller(rt, rt.lua.execute(
        # called through a table, so a traceback names it <[string "chunk"]:N> as dnsdist does
        "local t = {...} return function(dq) t[1](dq, t[2]) end", f, handle), dq_cls)

    def run(dq: Any, msg: Any) -> bool:
        handle._msg = msg
        ok, err, _ = call(dq)
        if not ok and rt.registry.settings.verbose:
            rt.log(_failure_line(dq, dq_cls is DRHandle, err))
        return ok
    return run


def _failure_line(dq: Any, response: bool, err: str) -> str:
    """dnsdist 1.7.3's verbose line for an exception out of a query's or an answer's actions."""
    if response and dq.tcp:
        return f"Unexpected exception while handling response from backend: {err}"
    if response:
        server = getattr(dq, "server", None)
        where = server.address_str if server is not None else ""
        return (f"Got an error in UDP responder thread while parsing a response from {where}, "
                f"id 0: {err}")
    client = format_address(str(dq.remote[0]), int(dq.remote[1]))
    qid = int.from_bytes(bytes(dq.data[:2]), "big")
    return (f"Got an error while parsing a {'TCP' if dq.tcp else 'UDP'} query from {client}, "
            f"id {qid}: {err}")


def register(rt: Any) -> None:
    reg = rt.registry

    def make_key(password: Any, *a: Any) -> str:
        from pydist import ipcipher     # cryptography loads only for configs that use it
        return ipcipher.make_key(as_str(password).encode("latin-1")).decode("latin-1")
    rt.fn("makeIPCipherKey", make_key)

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
        reg.declare_remote_logger(logger)
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

    def alter_of(alter: Any, dq_cls: type, msg_cls: type) -> Any:
        return alter_caller(rt, alter, dq_cls, msg_cls) if is_function(alter) else None

    def options(opts: Any) -> tuple[str, bytes]:
        """(serverID, ipEncryptKey) of the options table."""
        d = table_to_dict(opts) if opts is not None else {}
        return (as_str(d.get("serverID", "")),
                as_str(d.get("ipEncryptKey", "")).encode("latin-1"))

    def log_action(logger: Any, alter: Any = None, opts: Any = None, *a: Any) -> ActionHandle:
        sid, key = options(opts)
        from pydist.rules.remotelog import RemoteLogAction   # loaded once a logger exists
        return ActionHandle(RemoteLogAction(logger_of(logger), sid, key,
                                            alter_of(alter, DQHandle, PBMessageHandle)))
    rt.fn("RemoteLogAction", log_action)

    def log_response(logger: Any, alter: Any = None, cname: Any = None, opts: Any = None,
                     *a: Any) -> ActionHandle:
        include = False if cname is None else as_bool(cname)
        sid, key = options(opts)
        from pydist.rules.remotelog import RemoteLogResponseAction
        return ActionHandle(RemoteLogResponseAction(
            logger_of(logger), sid, include, key, alter_of(alter, DRHandle, PBMessageHandle)))
    rt.fn("RemoteLogResponseAction", log_response)

    def dnstap_action(response: bool) -> Any:
        dq_cls = DRHandle if response else DQHandle

        def make(identity: Any, logger: Any, alter: Any = None, *a: Any) -> ActionHandle:
            from pydist.rules import remotelog as actions   # loaded once a logger exists
            cls = actions.DnstapLogResponseAction if response else actions.DnstapLogAction
            return ActionHandle(cls(as_str(identity), logger_of(logger),
                                    alter_of(alter, dq_cls, DnstapMessageHandle)))
        return make
    rt.fn("DnstapLogAction", dnstap_action(False))
    rt.fn("DnstapLogResponseAction", dnstap_action(True))
