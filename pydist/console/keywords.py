"""dnsdist 1.7.3's console keyword table (help.txt: its `help()` output, one line per keyword,
captured from the binary). One table serves `help()` on the server side and tab completion
in the client, as dnsdist's g_consoleKeywords serves both."""
from __future__ import annotations

import importlib.resources
import re
from functools import cache

# "name(params): text" for a function, "name: text" for a plain keyword (a policy name)
_LINE = re.compile(r"([A-Za-z0-9_]+)(\(.*?\))?: ")


@cache
def help_lines() -> tuple[str, ...]:
    text = importlib.resources.files("pydist.console").joinpath("help.txt").read_text()
    return tuple(text.splitlines())


def _completion(line: str) -> str:
    """What readline completes to: `name(` with parameters, `name()` without, else `name`."""
    m = _LINE.match(line)
    if m is None:
        return line.partition(":")[0]
    name, params = m.group(1), m.group(2)
    if params is None:
        return name
    return name + ("()" if params == "()" else "(")


@cache
def completions() -> tuple[str, ...]:
    return tuple(_completion(line) for line in help_lines())


def help_text(command: str | None) -> str:
    """help() output: every keyword's line; help("name"): that keyword's line, or dnsdist's
    `Nothing found for name`."""
    if command is None:
        return "".join(line + "\n" for line in help_lines())
    for line in help_lines():
        m = _LINE.match(line)
        if m is not None and m.group(1) == command:
            return line + "\n"
    return f"Nothing found for {command}\n"
