"""The composition root: dnsdist's command line, the three modes, exit codes."""
from __future__ import annotations

import base64
import binascii
import getopt
import os
import sys
from typing import Any, Callable

from pydist.registry import CHECK, CLIENT, SERVE, FrontendDecl, Registry

VERSION_LINE = "dnsdist 1.7.3 (Lua 5.1.4 [LuaJIT 2.1.0-beta3])"
FEATURES = "Enabled features: dns-over-tls(openssl) libsodium"
DEFAULT_CONFIG = "/etc/dnsdist/dnsdist.conf"
USAGE = """
Syntax: dnsdist [-C,--config file] [-c,--client [IP[:PORT]]]
[-e,--execute cmd] [-h,--help] [-l,--local addr]
[-v,--verbose] [--check-config] [--version]

-a,--acl netmask      Add this netmask to the ACL
-C,--config file      Load configuration from 'file'
-c,--client           Operate as a client, connect to dnsdist. This reads
                      controlSocket from your configuration file, but also
                      accepts an IP:PORT argument
-k,--setkey KEY       Use KEY for encrypted communication to dnsdist. This
                      is similar to setting setKey in the configuration file.
                      NOTE: this will leak this key in your shell's history
                      and in the systems running process list.
--check-config        Validate the configuration file and exit. The exit-code
                      reflects the validation, 0 is OK, 1 means an error.
                      Any errors are printed as well.
-e,--execute cmd      Connect to dnsdist and execute 'cmd'
-g,--gid gid          Change the process group ID after binding sockets
-h,--help             Display this helpful message
-l,--local address    Listen on this local address
--supervised          Don't open a console, I'm supervised
                        (use with e.g. systemd and daemontools)
--disable-syslog      Don't log to syslog, only to stdout
                        (use with e.g. systemd)
-u,--uid uid          Change the process user ID after binding sockets
-v,--verbose          Enable verbose mode
-V,--version          Show dnsdist version information and exit
"""
LONG_OPTS = ["acl=", "check-config", "client", "config=", "disable-syslog", "execute=", "gid=",
             "help", "local=", "setkey=", "supervised", "uid=", "verbose", "version",
             "log-format=", "workers="]   # pydist's own: log format (text or json) and
                                          # the number of worker processes (pydist.workers)


class Options:
    def __init__(self) -> None:
        self.config = DEFAULT_CONFIG
        self.client = False
        self.command: str | None = None
        self.check = False
        self.supervised = False
        self.acls: list[str] = []
        self.locals: list[str] = []
        self.key: str | None = None
        self.uid: str | None = None
        self.gid: str | None = None
        self.verbose = False
        self.positional: list[str] = []
        self.syslog = True
        self.log_format = "text"
        self.workers: int | None = None


def out(line: str) -> None:
    sys.stdout.buffer.write(line.encode("latin-1", "replace") + b"\n")
    sys.stdout.buffer.flush()


def pydist_version_line() -> str:
    """The installed build's own identity, on a line after dnsdist's."""
    from importlib import metadata

    from pydist import __version__
    try:
        version = metadata.version("pydist")
    except metadata.PackageNotFoundError:   # run from a source tree that was never installed
        version = __version__
    return f"pydist {version} (Python {sys.version.split()[0]})"


def parse_args(argv: list[str]) -> Options | int:
    o = Options()
    try:
        opts, rest = getopt.gnu_getopt(argv, "a:cC:e:g:hk:l:u:vV", LONG_OPTS)
    except getopt.GetoptError as e:
        opt = e.opt if e.opt else ""
        dash = "--" if len(opt) > 1 else "-"
        if "requires argument" in e.msg:
            print(f"dnsdist: option requires an argument -- '{opt}'" if dash == "-" else
                  f"dnsdist: option '{dash}{opt}' requires an argument", file=sys.stderr)
        else:
            print(f"dnsdist: unrecognized option '{dash}{opt}'" if dash == "--" else
                  f"dnsdist: invalid option -- '{opt}'", file=sys.stderr)
        sys.stdout.write(USAGE)
        return 1
    for k, v in opts:
        if k in ("-a", "--acl"):
            o.acls.append(v)
        elif k in ("-c", "--client"):
            o.client = True
        elif k in ("-C", "--config"):
            o.config = v
        elif k in ("-e", "--execute"):
            o.client, o.command = True, v
        elif k in ("-g", "--gid"):
            o.gid = v
        elif k in ("-h", "--help"):
            sys.stdout.write("dnsdist 1.7.3\n" + USAGE + "\n")
            return 0
        elif k in ("-k", "--setkey"):
            o.key = v
        elif k in ("-l", "--local"):
            o.locals.append(v)
        elif k in ("-u", "--uid"):
            o.uid = v
        elif k in ("-v", "--verbose"):
            o.verbose = True
        elif k in ("-V", "--version"):
            out(VERSION_LINE)     # dnsdist's two lines first and unchanged: scripts parse them
            out(FEATURES)
            out(pydist_version_line())
            return 0
        elif k == "--check-config":
            o.check = True
        elif k == "--supervised":
            o.supervised = True
        elif k == "--disable-syslog":
            o.syslog = False
        elif k == "--log-format":
            if v not in ("text", "json"):
                print(f"dnsdist: --log-format takes 'text' or 'json', not '{v}'", file=sys.stderr)
                return 1
            o.log_format = v
        elif k == "--workers":
            from pydist.workers import MAX_WORKERS
            if not v.isdigit() or not 1 <= int(v) <= MAX_WORKERS:
                print(f"dnsdist: --workers takes a number from 1 to {MAX_WORKERS}, not '{v}'",
                      file=sys.stderr)
                return 1
            o.workers = int(v)
    o.positional = rest
    return o


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    o = parse_args(args)
    if isinstance(o, int):
        return o
    mode = CLIENT if o.client else CHECK if o.check else SERVE
    reg = new_registry(o, mode, out if mode == CLIENT else make_log_sink(o))
    if reg is None:
        return 1
    from luaapi.runtime import ConfigError, LuaConfig
    lua = LuaConfig(reg)
    try:
        lua.run_file(o.config)
    except ConfigError as e:
        for line in e.lines:
            reg.log(line)
        return 1
    if mode == CLIENT:
        return run_client_mode(reg, o)
    if mode == CHECK:
        out(f"Configuration '{o.config}' OK!")
        return 0
    return serve(reg, lua, o)


def new_registry(o: Options, mode: str, log: Callable[[str], None]) -> Registry | None:
    """A registry with what the command line declares before the config runs (-k, -a, -v)."""
    reg = Registry(mode, log=log)
    reg.settings.verbose = o.verbose
    if o.key is not None:
        try:
            reg.console_key = base64.b64decode(o.key + "=" * (-len(o.key) % 4))
        except (binascii.Error, ValueError):
            print(f"Unable to decode key '{o.key}'.", file=sys.stderr)
            return None
    if o.acls:
        reg.acl.clear()
        for a in o.acls:
            reg.acl.add(a)
    return reg


def make_config_loader(o: Options) -> Callable[[Callable[[str], None]], Any]:
    """What a hot reload calls (pydist/reload): the config file evaluated as at startup, into
    a fresh registry in RELOAD mode, with the command line's listeners and backends."""
    from pydist.registry import RELOAD
    from pydist.reload.model import LoadedConfig, ReloadError

    def load(log: Callable[[str], None]) -> LoadedConfig:
        from luaapi.bindings.dynblocks import make_maintenance
        from luaapi.runtime import ConfigError, LuaConfig
        reg = new_registry(o, RELOAD, log)
        if reg is None:
            raise ReloadError([f"Unable to decode key '{o.key}'."])
        try:
            with open(o.config, "rb"):
                pass
        except OSError as e:
            raise ReloadError([f"Unable to read configuration from '{o.config}': "
                               f"{e.strerror}"]) from None
        lua = LuaConfig(reg)
        try:
            lua.run_file(o.config)
        except ConfigError as e:
            raise ReloadError(e.lines) from None
        add_positional_backends(reg, lua, o)
        apply_cli_listeners(reg, o)
        reg.config_done = True
        executor = make_console_executor(lua)
        lua.sweep_python_refs()
        return LoadedConfig(reg, executor, [make_maintenance(lua), lua.sweep_python_refs], lua)
    return load


def make_log_sink(o: Options) -> Callable[[str], None]:
    """dnsdist's logging: stdout, plus syslog unless --disable-syslog (pydist.logs)."""
    from pydist.logs import LogSink, Syslog
    return LogSink(Syslog() if o.syslog else None, json_format=o.log_format == "json")


def run_client_mode(reg: Registry, o: Options) -> int:
    from pydist.console.client import run_client
    from pydist.dns.netmask import parse_address
    host, port = reg.console_address or ("127.0.0.1", 5199)
    if o.positional:
        host, port = parse_address(o.positional[0], 5199)
    return run_client(host, port, reg.console_key, o.command,
                      max_msg_size=reg.console_settings.get("max_msg_size", 10_000_000))


def apply_cli_listeners(reg: Registry, o: Options) -> None:
    """-l replaces the plain listeners; positional arguments become backends."""
    from pydist.dns.netmask import parse_address
    if o.locals:
        reg.frontends = [f for f in reg.frontends if f.kind != "plain"]
        for addr in o.locals:
            host, port = parse_address(addr, 53)
            reg.frontends.append(FrontendDecl(host, port))
    if not reg.frontends:
        reg.frontends.append(FrontendDecl("127.0.0.1", 53))


def add_positional_backends(reg: Registry, lua: Any, o: Options) -> None:
    for addr in o.positional:
        lua.globals.newServer(addr)


def drop_privileges(o: Options) -> None:
    import grp
    import pwd
    if o.gid:
        gid = int(o.gid) if o.gid.isdigit() else grp.getgrnam(o.gid).gr_gid
        os.setgid(gid)
    if o.uid:
        uid = int(o.uid) if o.uid.isdigit() else pwd.getpwnam(o.uid).pw_uid
        os.setuid(uid)


def serve(reg: Registry, lua: Any, o: Options) -> int:
    import asyncio   # the engine's modules load only when serving: --check-config stays quick

    import uvloop
    from pydist.engine import SINGLE, SUPERVISOR, BindError, Engine, bind_frontend, startup_banner
    from pydist.workers import open_fds, worker_count
    add_positional_backends(reg, lua, o)
    apply_cli_listeners(reg, o)
    workers = worker_count(reg, o.workers)
    plan = None
    try:
        for fe in reg.frontends:
            bind_frontend(fe, reg.log, reuse_port=workers > 1)
            if fe.tcp:
                reg.log(f"Listening on {fe.address()}" + {"tls": " for TLS", "doh": " for DoH",
                                                          "dnscrypt": " for DNSCrypt"}.get(fe.kind, ""))
        if workers > 1:
            from pydist.workers.sockets import plan_sockets
            plan = plan_sockets(reg, workers, lambda fe: bind_frontend(fe, reg.log, True))
    except BindError as e:
        reg.log(str(e))
        return 1
    if o.uid or o.gid:
        try:
            drop_privileges(o)
        except (KeyError, OSError) as e:
            reg.log(f"Fatal error: unable to change user or group: {e}")
            return 1
    reg.config_done = True
    config_fds = open_fds() if plan else set()   # what a forked worker keeps (KV stores...)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    engine = Engine(reg, loop, role=SUPERVISOR if plan else SINGLE)
    executor = make_console_executor(lua)
    engine.console_execute = executor
    from luaapi.bindings.dynblocks import make_maintenance
    config_hooks = [make_maintenance(lua), lua.sweep_python_refs]  # see luaapi.runtime._PYREF_GUARD
    engine.maintenance_hooks.extend(config_hooks)
    engine.config_hooks.extend(config_hooks)
    lua.sweep_python_refs()
    from pydist.reload.triggers import install_triggers
    engine.config_loader = make_config_loader(o)
    startup_banner(reg)
    for item in dict.fromkeys(reg.unsupported):
        reg.log(f"Warning: {item} is accepted but not carried out by pydist yet")
    started = install_triggers(engine, o.config)

    async def run() -> None:
        """One run of the loop from startup to the end: a signal (SIGHUP) arriving between
        two runs of a uvloop loop is lost."""
        await engine.start()
        if plan:
            from pydist.workers.supervisor import Supervisor
            Supervisor(reg, engine, executor, plan, config_fds, [lua.sweep_python_refs],
                       lambda: lua.globals["maintenance"] is not None).start()
        started()
        for address in reg.console_addresses:
            engine.open_console(address)
        if o.supervised:
            from pydist.sdnotify import notify
            notify("READY=1")
        else:
            start_stdin_console(loop, engine)
        await engine.stopped.wait()
    loop.run_until_complete(run())
    return engine.exit_code or 0


def make_console_executor(lua: Any) -> Callable[[str], str]:
    from luaapi.console import make_executor
    executor = make_executor(lua.lua, lua.output)
    lua.executor = executor
    return executor


def start_stdin_console(loop: Any, engine: Any) -> None:
    """dnsdist's local console: lines from stdin run in the Lua state (the current one: a
    reload replaces it); EOF ends the process."""
    import asyncio
    import threading

    def reader() -> None:
        for line in sys.stdin:
            line = line.rstrip("\n")
            if not line.strip():
                continue
            fut = asyncio.run_coroutine_threadsafe(_run(engine, line), loop)
            try:
                text = fut.result()
            except Exception as e:
                text = f"Error: {e}"
            stream = sys.stderr if text.startswith("Error: ") else sys.stdout
            stream.write(text)
            stream.flush()
        loop.call_soon_threadsafe(engine.shutdown, 0)
    threading.Thread(target=reader, daemon=True, name="stdin-console").start()


async def _run(engine: Any, line: str) -> str:
    return engine.console_execute(line)


if __name__ == "__main__":
    sys.exit(main())
