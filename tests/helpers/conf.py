"""The opening lines most test configs share, written once: no security poll, a loopback
listener, a console with the tests' key, and (optionally) one backend with a packet cache."""
from __future__ import annotations

KEY = "MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74="


def console_prelude(backend: bool = True, cache: int | None = None) -> str:
    """Lines with `{port}`, `{portconsole}` (and `{backend}`) for start_proc to fill."""
    lines = ['setSecurityPollSuffix("")', 'setLocal("127.0.0.1:{port}")',
             'controlSocket("127.0.0.1:{portconsole}")', f'setKey("{KEY}")']
    if backend:
        lines.append('newServer({address="{backend}"})')
    if cache is not None:
        lines += [f"pc = newPacketCache({cache})", 'getPool(""):setCache(pc)']
    return "\n" + "\n".join(lines) + "\n"


# A dead backend (health change), a query-rate dynamic block and a failing LuaAction: one of
# each event the log tests look for (syslog and JSON lines). `{port}` to fill.
LOG_EVENTS_CONFIG = """
setSecurityPollSuffix("")
setLocal("127.0.0.1:{port}")
newServer({address="127.0.0.1:9", checkInterval=1, name="dead"})
local dbr = dynBlockRulesGroup()
dbr:setQueryRate(5, 1, "Exceeded query rate", 60)
function maintenance() dbr:apply() end
addAction(QNameRule("boom.example."), LuaAction(function(dq) error("boom") end))
"""
