"""Console settings as the config declares them: controlSocket, setKey, makeKey, console ACL."""
from __future__ import annotations

import base64
import os
from typing import Any

from luaapi.bindings.frontends import netmask_list
from luaapi.convert import as_bool, as_int, as_str
from luaapi.errors import PdnsError
from pydist.console.protocol import b64decode_lenient
from pydist.dns.netmask import AddressError, parse_address


def decode_key(text: str) -> bytes | None:
    """Lenient base64 as dnsdist's B64Decode (it takes "NotASecureKey" without a word); None
    when it cannot decode at all."""
    try:
        return b64decode_lenient(text)
    except ValueError:
        return None


def register(rt: Any) -> None:
    reg = rt.registry

    def show_help(command: Any = None, *a: Any) -> None:
        from pydist.console.keywords import help_text     # read on first help()
        rt.show(help_text(None if command is None else as_str(command)))
    rt.fn("help", show_help, no_side_effect=True)

    def control_socket(addr: Any, *a: Any) -> None:
        try:
            reg.console_address = parse_address(as_str(addr), 5199)
        except AddressError as e:
            raise PdnsError(str(e)) from None
        reg.declare_console(reg.console_address)
    rt.fn("controlSocket", control_socket)

    def set_key(key: Any, *a: Any) -> None:
        text = as_str(key)
        if not reg.config_done and reg.console_key is not None:
            return  # -k on the command line wins over the config
        decoded = decode_key(text)
        if decoded is None:
            rt.log(f"Unable to decode {text} as Base64")
            return
        reg.console_key = decoded
    rt.fn("setKey", set_key)

    def make_key(*a: Any) -> None:
        rt.show('setKey("' + base64.b64encode(os.urandom(32)).decode() + '")\n')
    rt.fn("makeKey", make_key, no_side_effect=True)

    masks = netmask_list

    def set_console_acl(v: Any, *a: Any) -> None:
        items = masks(v)
        reg.console_acl.clear()
        for m in items:
            reg.console_acl.add(m)
    rt.fn("setConsoleACL", set_console_acl)
    rt.fn("addConsoleACL", lambda m, *a: [reg.console_acl.add(x) for x in masks(m)] and None)

    def show_console_acl(*a: Any) -> None:
        for m in reg.console_acl.to_strings():
            rt.show(m + "\n")
    rt.fn("showConsoleACL", show_console_acl, no_side_effect=True)

    cs = reg.console_settings
    rt.fn("setConsoleConnectionsLogging",
          lambda b, *a: cs.__setitem__("log_connections", as_bool(b)))
    rt.fn("setConsoleMaximumConcurrentConnections",
          lambda n, *a: cs.__setitem__("max_connections", as_int(n)))
    rt.fn("setConsoleOutputMaxMsgSize", lambda n, *a: cs.__setitem__("max_msg_size", as_int(n)))

    def test_crypto(msg: Any = None, *a: Any) -> None:
        key = reg.console_key
        if key is None or len(key) != 32:
            rt.show("Crypto failed..\n")
            return
        try:
            import nacl.secret
            box = nacl.secret.SecretBox(key)
            text = (as_str(msg) if msg is not None else "testing").encode("latin-1")
            ok = box.decrypt(box.encrypt(text)) == text
        except Exception:
            ok = False
        rt.show("Everything is ok!\n" if ok else "Crypto failed..\n")
    rt.fn("testCrypto", test_crypto)
