"""dnsdist's response actions (DNSResponseAction): one class each, __call__(dr) -> (verdict, text),
with dnsdist 1.7.3's toString texts."""
from __future__ import annotations

import time
from typing import Any, Callable

from pydist.dns.netmask import format_address
from pydist.dns.reader import TYPE_OPT, WireError, counts, records
from pydist.dns.wire import qtype_to_text
from pydist.rules.actions import R_ALLOW, R_DELAY, R_DROP, R_NONE, Action
from pydist.rules.selectors import rcode_text

R_CONTINUE = (R_NONE, None)


class ResponseAction(Action):
    """Base of the response-chain actions (addAction refuses them, and the reverse)."""
    response = True

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        return R_CONTINUE


class AllowResponseAction(ResponseAction):
    text = "allow"

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        return R_ALLOW, None


class DropResponseAction(ResponseAction):
    text = "drop"

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        return R_DROP, None


class DelayResponseAction(ResponseAction):
    """UDP answers only: delayed by ms without holding the loop (TCP ignores it, as dnsdist)."""

    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        return R_DELAY, str(self.ms)

    def __str__(self) -> str:
        return f"delay by {self.ms} msec"


class SetTagResponseAction(ResponseAction):
    def __init__(self, tag: str, value: str) -> None:
        self.tag, self.value = tag, value

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        dr.set_tag(self.tag, self.value)
        return R_CONTINUE

    def __str__(self) -> str:
        return f"set tag '{self.tag}' to value '{self.value}'"


class SetSkipCacheResponseAction(ResponseAction):
    text = "skip cache"

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        dr.skip_cache = True
        return R_CONTINUE


class LogResponseAction(ResponseAction):
    """`Answer to <ip:port> for <qname> <type> (<rcode text>) with id <id>`, to the log or to
    a file."""

    def __init__(self, path: str = "", append: bool = False, buffered: bool = False,
                 verbose_only: bool = True, timestamps: bool = False,
                 log: Callable[[str], None] | None = None,
                 verbose: Callable[[], bool] | None = None) -> None:
        self.path, self.verbose_only, self.timestamps = path, verbose_only, timestamps
        self.log = log or print
        self.verbose = verbose or (lambda: False)
        self.fp = None
        if path:   # OSError goes to the binding: the config fails as in dnsdist
            self.fp = open(path, "a" if append else "w", buffering=-1 if buffered else 1,
                           encoding="latin-1", errors="replace")

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        qid = dr.data[0] | (dr.data[1] << 8)     # the header field in host order, as dnsdist
        line = (f"Answer to {format_address(dr.remote[0], dr.remote[1])} for {dr.qname} "
                f"{qtype_to_text(dr.qtype)} ({rcode_text(dr.rcode)}) with id {qid}")
        if self.fp is None:
            if not self.verbose_only or self.verbose():
                self.log(line)
            return R_CONTINUE
        if self.timestamps:
            now = time.time()
            line = f"[{int(now)}.{int((now % 1) * 1e9)}] " + line   # unpadded, as dnsdist
        try:
            self.fp.write(line + "\n")
        except (OSError, ValueError):
            pass
        return R_CONTINUE

    def __str__(self) -> str:
        return "log" + (f" to {self.path}" if self.path else "")


class LuaResponseAction(ResponseAction):
    """f(dr) -> (verdict[, text]); the binding turns a Lua error into ServFail and a warning."""
    text = "Lua response script"

    def __init__(self, func: Callable[[Any], tuple[int, str | None]],
                 text: str | None = None) -> None:
        self.func = func
        if text is not None:     # the FFI variants: "Lua FFI script", ...
            self.text = text

    def __call__(self, dr: Any) -> tuple[int, str | None]:
        return self.func(dr)

    def runner(self) -> Callable[[Any], tuple[int, str | None]]:
        return self.func


def rr_ttl_fields(resp: bytes | bytearray) -> list[tuple[int, int, int, int]]:
    """(section, qclass, qtype, offset of the TTL) of each RR after the question, OPT excluded;
    the records before a damaged one when the answer cannot be walked to its end."""
    out: list[tuple[int, int, int, int]] = []
    try:
        _, an, ns, _ = counts(resp)
        for rr in records(resp):
            if rr.rtype != TYPE_OPT:
                section = 1 if rr.index < an else 2 if rr.index < an + ns else 3
                out.append((section, rr.rclass, rr.rtype, rr.rdata - 6))
    except WireError:
        pass
    return out
