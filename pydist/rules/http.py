"""Rules on a DoH query's HTTP request (dnsdist's doh.cc): path, path regex, header, and
HTTPStatusAction. Over other transports the selectors never match and the action continues."""
from __future__ import annotations

import re
from typing import Any

from pydist.rules.actions import CONTINUE, HEADER_MODIFY, Action, ResponseConfig
from pydist.rules.selectors import Selector, posix_to_python


class HTTPPathRule(Selector):
    """The request's path, before any query string, compared exactly."""

    def __init__(self, path: str) -> None:
        self.path = path

    def matches(self, dq: Any) -> bool:
        return dq.http is not None and dq.http.http_path() == self.path

    def __str__(self) -> str:
        return f"url path == {self.path}"


class HTTPPathRegexRule(Selector):
    """The path searched with a POSIX extended regex, case-insensitive (dnsdist's Regex)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.regex = re.compile(posix_to_python(pattern), re.IGNORECASE)

    def matches(self, dq: Any) -> bool:
        return dq.http is not None and self.regex.search(dq.http.http_path()) is not None

    def __str__(self) -> str:
        return f"http path ~ {self.pattern}"


class HTTPHeaderRule(Selector):
    """Any header of that (case-insensitive) name whose value the regex finds."""

    def __init__(self, header: str, pattern: str) -> None:
        self.header, self.pattern = header, pattern
        self.name = header.lower()
        self.regex = re.compile(posix_to_python(pattern), re.IGNORECASE)

    def matches(self, dq: Any) -> bool:
        if dq.http is None:
            return False
        return any(n == self.name and self.regex.search(v) for n, v in dq.http.headers)

    def __str__(self) -> str:
        return f"http[{self.header}] ~ {self.pattern}"


class HTTPStatusAction(Action):
    """Answer a DoH query with this HTTP status and body instead of a DNS message."""

    def __init__(self, status: int, body: bytes, content_type: str = "",
                 config: ResponseConfig | None = None) -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.config = config or ResponseConfig()

    def __call__(self, dq: Any) -> tuple[int, str | None]:
        if dq.http is None:
            return CONTINUE
        dq.http.http_response = (self.status, self.body, self.content_type)
        dq.set_flag(2, 0x80, True)
        self.config.apply(dq)
        return HEADER_MODIFY, None

    def __str__(self) -> str:
        return f"return an HTTP status of {self.status}"
