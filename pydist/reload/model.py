"""The values a reload passes around: what the loader evaluated, and what the reload did."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from pydist.registry import Registry


class ReloadError(Exception):
    """The new config cannot be used: the running one stays. `lines` are what is logged."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__("\n".join(lines))
        self.lines = lines


@dataclass
class LoadedConfig:
    """A config file evaluated into a fresh registry (mode RELOAD: nothing bound, nothing
    connected), with what the composition root built around it: the console executor of its
    Lua state and the one-second hooks that belong to that state."""
    registry: "Registry"
    console_execute: Callable[[str], str]
    maintenance_hooks: list[Callable[[], None]]
    keep_alive: Any = None          # the Lua state (its functions run in rules and policies)


@dataclass
class ReloadResult:
    """What a reload did: `ok` with a one-line `summary`, or the `error` that kept the old
    config; `seconds` from the start of the evaluation to the end of the swap."""
    ok: bool
    summary: str = ""
    error: str = ""
    seconds: float = 0.0
    when: float = 0.0                # wall-clock time of the reload
    details: dict[str, list[str]] = field(default_factory=dict)

    def text(self) -> str:
        """What the console prints."""
        if self.ok:
            return f"Reloaded: {self.summary}\n"
        return f"Reload failed, the running configuration is kept: {self.error}\n"

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "summary": self.summary, "error": self.error,
                "seconds": round(self.seconds, 6), "time": int(self.when),
                "details": self.details}
