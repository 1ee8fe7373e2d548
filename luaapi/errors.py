"""Exceptions that bindings raise, each reaching Lua with the text dnsdist would give."""


class LuaArgError(Exception):
    """Wrong argument count or type: reported as a plain Lua error at the caller's line."""


class DnsdistError(Exception):
    """A std::exception in dnsdist: reported as 'Caught exception: <msg>'."""


class PdnsError(Exception):
    """A PDNSException in dnsdist: the config dies with 'Fatal pdns error: <msg>'."""


def classify(exc: BaseException) -> tuple[str, str]:
    """(kind, message) for the Lua-side wrapper: 'lua' errors at the caller, 'pdns' is fatal."""
    if isinstance(exc, LuaArgError):
        return "lua", str(exc)
    if isinstance(exc, PdnsError):
        return "pdns", str(exc)
    return "lua", f"Caught exception: {exc}"
