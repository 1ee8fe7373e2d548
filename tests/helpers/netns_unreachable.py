"""Run inside a fresh network namespace holding only loopback (`unshare -n`): start one
implementation with backends that have no route, query it, add another such backend from the
console, and print what happened as JSON on the last line of stdout. With `default` (under
`unshare -mn`): serve the repository's conf.d/default.conf (`make run`) with an
/etc/resolv.conf, bind-mounted in this mount namespace only, naming unroutable servers.

Only loopback exists in the namespace, so connecting to any other address fails with
ENETUNREACH before a packet leaves: nothing reaches a real network."""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.helpers.conf import console_prelude
from tests.helpers.pydist_proc import DnsdistProcess, query, run_cli

CONF = console_prelude(backend=False) + """
newServer("192.0.2.53")
newServer("[2001:db8::53]:53")
newServer({address="192.0.2.55", tcpOnly=true})
addAction("spoofed.example.", SpoofAction("192.0.2.1"))
"""
_REPO = Path(__file__).resolve().parents[2]
KEEP = ("Added downstream", "Error connecting", "Error checking the health", "Marking downstream",
        "Listening on", "Traceback", "Error:")


def default_conf(impl: str) -> None:
    """`make run` on an offline host: the start survives, the log says why nothing answers."""
    with tempfile.TemporaryDirectory() as tmp:
        resolv = Path(tmp) / "resolv.conf"
        resolv.write_text("nameserver 192.0.2.53\nnameserver 2001:db8::53\n")
        subprocess.run(["mount", "--bind", str(resolv), "/etc/resolv.conf"], check=True)
        conf = (_REPO / "conf.d" / "default.conf").read_text()
        proc = DnsdistProcess(impl, conf, Path(tmp), check_config=False)
        try:
            proc.start(ready="Listening on 127.0.0.1:5300")
            answer = query(("127.0.0.1", 5300), "offline.example.", timeout=1.0)
            alive = proc.alive()
        finally:
            proc.stop()
        lines = [ln for ln in proc.lines if ln.startswith(KEEP)]
        print(json.dumps({"answer": None if answer is None else answer.to_text(),
                          "alive": alive, "log": lines}))


def main(impl: str) -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    if sys.argv[2:] == ["default"]:
        default_conf(impl)
        return
    with tempfile.TemporaryDirectory() as tmp:
        proc = DnsdistProcess(impl, CONF + "setVerboseHealthChecks(true)\n", Path(tmp))
        try:
            proc.start(ready=r"Marking downstream 192\.0\.2\.55:53 as 'down'")
            answer = query(proc.addr(), "spoofed.example.")
            res = run_cli(impl, ["-C", str(proc.conf), "-e", 'newServer("192.0.2.54")'])
            proc.wait_for("Error connecting to new server with address 192.0.2.54:53")
            states = run_cli(impl, ["-C", str(proc.conf), "-e", "showServers()"])
            alive = proc.alive()
        finally:
            proc.stop()
        port = f"127.0.0.1:{proc.addr()[1]}"
        lines = [ln.replace(port, "127.0.0.1:PORT") for ln in proc.lines if ln.startswith(KEEP)]
        print(json.dumps({
            "answer": None if answer is None else [r.to_text() for r in answer.answer],
            "console": res.stdout + res.stderr, "servers": states.stdout + states.stderr,
            "alive": alive, "log": lines}))


if __name__ == "__main__":
    main(sys.argv[1])
