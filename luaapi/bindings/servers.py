"""newServer and the server objects Lua sees (dnsdist-lua.cc / dnsdist-lua-bindings.cc)."""
from __future__ import annotations

from typing import Any

from luaapi.bindings.healthchecks import check_function
from luaapi.convert import (as_bool, as_int, as_str, fail, is_function, is_table, lua_type,
                            str_or_list, table_to_dict)
from luaapi.errors import DnsdistError, LuaArgError
from pydist.backend.server import DownstreamState
from pydist.backend.udp import connect_error
from pydist.dns.netmask import AddressError, parse_address
from pydist.registry import CLIENT
from pydist.tls.names import TLSConfigError

INT_OPTS = ("order", "weight", "qps", "retries", "tcpConnectTimeout", "tcpSendTimeout",
            "tcpRecvTimeout", "sockets", "checkClass", "checkTimeout", "checkInterval",
            "maxCheckFailures", "rise", "addXPF", "maxInFlight")


class ServerHandle:
    """What Lua holds for a backend: dnsdist's method names over a DownstreamState."""

    def __init__(self, rt: Any, server: DownstreamState) -> None:
        self.server = server
        self.rt = rt

    # state
    def setUp(self, *a: Any) -> None:
        self.server.set_up()

    def setDown(self, *a: Any) -> None:
        self.server.set_down()

    def setAuto(self, status: Any = None, *a: Any) -> None:
        self.server.set_auto(None if status is None else as_bool(status))

    def isUp(self, *a: Any) -> bool:
        return self.server.is_up()

    # identity and figures
    def getName(self, *a: Any) -> str:
        return self.server.name

    def getNameWithAddr(self, *a: Any) -> str:
        return self.server.name_with_addr()

    def getID(self, *a: Any) -> str:
        return self.server.uuid

    def getOutstanding(self, *a: Any) -> int:
        return self.server.outstanding

    def getDrops(self, *a: Any) -> int:
        return self.server.reuseds

    def getLatency(self, *a: Any) -> float:
        return self.server.latency_usec

    def setQPS(self, n: Any, *a: Any) -> None:
        from pydist.qps import QPSLimiter
        self.server.qps = QPSLimiter(as_int(n))      # 0: unlimited again, as dnsdist's setQPS
        self.rt.registry.changed()     # the cache fast path depends on qps limits

    def addPool(self, pool: Any, *a: Any) -> None:
        self.rt.registry.add_server_to_pool(self.server, as_str(pool))

    def rmPool(self, pool: Any, *a: Any) -> None:
        self.rt.registry.remove_server_from_pool(self.server, as_str(pool))

    def getPools(self, *a: Any) -> Any:
        return self.rt.lua.table_from(self.server.pools)

    def toString(self, *a: Any) -> str:
        return self.server.name_with_addr()

    tostring = toString

    # members dnsdist lets Lua write (s.order = 12): lists are not re-sorted, as in dnsdist
    @property
    def name(self) -> str:
        return self.server.name

    @name.setter
    def name(self, value: Any) -> None:
        self.server.name = as_str(value)
        self.server.explicit_name = True

    @property
    def upStatus(self) -> bool:
        return self.server.up_status

    @upStatus.setter
    def upStatus(self, value: Any) -> None:
        self.server.up_status = as_bool(value)

    @property
    def weight(self) -> int:
        return self.server.weight

    @weight.setter
    def weight(self, value: Any) -> None:
        self.server.weight = as_int(value)

    @property
    def order(self) -> int:
        return self.server.order

    @order.setter
    def order(self, value: Any) -> None:
        self.server.order = as_int(value)

    def console_str(self) -> str:
        return self.server.name

    def __str__(self) -> str:
        return self.server.name_with_addr()


def handle_for(rt: Any, server: DownstreamState | None) -> ServerHandle | None:
    """One handle per server, so Lua sees the same object each time (== works)."""
    if server is None:
        return None
    h = getattr(server, "lua_handle", None)
    if h is None:
        h = server.lua_handle = ServerHandle(rt, server)
    return h


def _options(t: Any) -> dict[str, Any]:
    opts: dict[str, Any] = {}
    for k, v in table_to_dict(t).items():
        if not isinstance(k, str):
            continue
        if k in INT_OPTS:
            opts[k] = as_int(v)
        elif k == "pool":
            opts[k] = str_or_list(v, "std::string")
        elif k == "checkFunction":
            opts[k] = check_function(v) if is_function(v) else None
        elif k == "cpus":
            opts[k] = v
        elif isinstance(v, bool):
            opts[k] = v
        elif v is None or isinstance(v, (int, float, str)):
            opts[k] = v if not isinstance(v, float) or not v.is_integer() else int(v)
        else:
            opts[k] = v
    return opts


def register(rt: Any) -> None:
    reg = rt.registry

    def new_server(arg: Any = None, qps: Any = None, *rest: Any) -> Any:
        if is_table(arg):
            opts = _options(arg)
            if "address" not in opts or opts["address"] is None:
                raise DnsdistError("boost::bad_get: failed value get using boost::get")
            address = as_str(opts.pop("address"))
        elif isinstance(arg, (str, int, float)) and not isinstance(arg, bool):
            address = as_str(arg)
            opts = {}
            if qps is not None:
                opts["qps"] = as_int(qps)
        else:
            raise fail(arg, "boost::variant<std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >, std::unordered_map<std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >, boost::variant<bool, std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> >, std::vector<std::pair<int, std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > >, std::allocator<std::pair<int, std::__cxx11::basic_string<char, std::char_traits<char>, std::allocator<char> > > > >, std::function<std::tuple<DNSName, unsigned short, unsigned short> (DNSName const&, unsigned short const&, unsigned short const&, dnsheader*)> > > >")
        try:
            host, port = parse_address(address, 53)
        except AddressError as e:
            rt.log(f"Error creating new server with address {address}: {e}")
            return None
        if host in ("0.0.0.0", "::"):
            rt.log(f"Error creating new server: {address} is not a valid address for a downstream server")
            return None
        pools = opts.get("pool") or [""]   # options keep "pool": the web API lists it as given
        server = DownstreamState(host, port, opts)
        handle = handle_for(rt, server)
        if server.weight < 1:
            rt.log("Error creating new server: downstream weight value must be greater than 0.")
            return handle
        if server.weight > 2147483647:
            rt.log("Error creating new server: downstream weight value must be between 1 and 2147483647")
            return handle
        reg.add_server(server, pools)
        if reg.serving:
            rt.log(f"Added downstream server {server.address_str}")
            error = None if server.tcp_only else connect_error(server)   # UDP sockets only
            if error is not None:
                rt.log(error)
        if server.options.get("tls") and server.tls is None:
            from pydist.tls.backend_context import BackendTLS   # pyOpenSSL only for TLS configs
            try:     # as dnsdist: the TLS context is made here, in --check-config too
                server.tls = BackendTLS(server.options)
            except TLSConfigError as e:
                raise DnsdistError(str(e)) from None
        return handle
    rt.fn("newServer", new_server)

    def find_server(which: Any) -> DownstreamState:
        if isinstance(which, ServerHandle):
            return which.server
        if isinstance(which, str) and not which.isdigit():
            for s in reg.servers:
                if s.uuid == which:
                    return s
            raise DnsdistError(f"Trying to get the server with UUID {which}, but it does not exist")
        return server_at(as_int(which))

    def server_at(i: int) -> DownstreamState:
        """g_dstates.at(n): n read as a C++ unsigned int (-1 is 4294967295), the range error
        of std::vector::at as dnsdist 1.7.3 lets it through."""
        i &= 0xFFFFFFFF
        if i >= len(reg.servers):
            raise DnsdistError(f"vector::_M_range_check: __n (which is {i}) >= this->size() "
                               f"(which is {len(reg.servers)})")
        return reg.servers[i]

    def get_server(which: Any = None, *rest: Any) -> Any:
        if which is None:
            raise LuaArgError("Unable to convert parameter from nil to boost::variant<unsigned long, std::string>")
        if reg.mode == CLIENT:   # `-c`/`-e`: as 1.7.3, a fresh stand-in without address, always
            return handle_for(rt, DownstreamState("0.0.0.0", 0))
        if isinstance(which, str) and not which.isdigit():
            import uuid   # a uuid is parsed only when one is asked for
            try:
                wanted = str(uuid.UUID(which))
            except ValueError:
                raise DnsdistError("invalid uuid string") from None
            for s in reg.servers:
                if s.uuid == wanted:
                    return handle_for(rt, s)
            return None
        return handle_for(rt, server_at(as_int(which)))
    rt.fn("getServer", get_server, no_side_effect=True)
    rt.fn("getServers", lambda *a: rt.lua.table_from([handle_for(rt, s) for s in reg.servers]),
          no_side_effect=True)
    rt.fn("rmServer", lambda which, *a: reg.remove_server(find_server(which)))

    def get_pool_servers(name: Any) -> Any:
        pool = reg.pools.get(as_str(name))
        if pool is None:
            raise DnsdistError(f"No pool named {as_str(name)}")
        return rt.lua.table_from([handle_for(rt, s) for s in pool.servers])
    rt.fn("getPoolServers", get_pool_servers, no_side_effect=True)
    _ = lua_type
