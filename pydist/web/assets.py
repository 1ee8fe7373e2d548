"""The built-in dashboard's static files (pydist/web/dashboard/), read once and kept."""
from __future__ import annotations

import importlib.resources
from functools import cache

_FILES = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/index.html": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "application/javascript"),
    "/style.css": ("style.css", "text/css"),
}


@cache
def _read(name: str) -> bytes:
    return importlib.resources.files("pydist.web").joinpath("dashboard", name).read_bytes()


def lookup(path: str) -> tuple[str, bytes] | None:
    """(content type, bytes) of a dashboard file, None for any other path."""
    entry = _FILES.get(path)
    if entry is None:
        return None
    name, ctype = entry
    return ctype, _read(name)
