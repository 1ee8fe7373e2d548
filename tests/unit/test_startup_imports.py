"""Start-up loads only what the config uses (issue 15, slow start).

A config without web, DoH, dnstap, protobuf logging or carbon must not pay for h11, asyncio
(in --check-config), libsodium, dnslib or the web router: each of those cost milliseconds of
every start. These tests name the modules, so an eager import added later fails here."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

PLAIN = 'setLocal("127.0.0.1:5300")\nnewServer("127.0.0.1:5301")\n' \
        'addAction(AllRule(), PoolAction(""))\nsetKey("MXNeLFWHUe4363BBKrY06cAsH8NWNb+Se2eXU5+Bb74=")\n'

# Loaded lazily: only configs (or console lines) that use them import these.
DEFERRED = ("asyncio", "h11", "nacl", "dnslib", "uuid", "pydist.web.server", "pydist.web.router",
            "pydist.dnstap", "pydist.remotelog", "pydist.frontend.doh", "pydist.carbon",
            "importlib.resources", "hashlib")


def modules_after_check(tmp_path: Path, config: str) -> set[str]:
    conf = tmp_path / "dnsdist.conf"
    conf.write_text(config)
    code = textwrap.dedent(f"""
        import json, sys
        from pydist.cli import main
        rc = main(["--check-config", "-C", {str(conf)!r}])
        print(json.dumps([rc, sorted(sys.modules)]))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         check=True)
    rc, mods = json.loads(out.stdout.splitlines()[-1])
    assert rc == 0, out.stdout
    return set(mods)


def test_plain_config_loads_no_optional_module(tmp_path: Path) -> None:
    loaded = modules_after_check(tmp_path, PLAIN)
    assert sorted(m for m in loaded if m.split(".")[0] in DEFERRED or m in DEFERRED) == []


def test_configs_using_them_still_load_them(tmp_path: Path) -> None:
    loaded = modules_after_check(tmp_path, PLAIN + textwrap.dedent("""
        newDOHResponseMapEntry("^/x$", 200, "x")
        rl = newRemoteLogger("127.0.0.1:5302")
        addAction(AllRule(), RemoteLogAction(rl))
        fs = newFrameStreamTcpLogger("127.0.0.1:5303")
        addAction(AllRule(), DnstapLogAction("id", fs))
        carbonServer("127.0.0.1:5304")
        addAction(AllRule(), PoolAction("x"), {uuid="6b3c4fa3-5d3e-4d1f-9a57-3e0a3a4b5c6d"})
    """))
    assert {"pydist.frontend.doh", "pydist.remotelog", "pydist.dnstap", "pydist.carbon",
            "uuid"} <= loaded
