"""DoT and DoH session tickets with worker processes: one ticket key ring for all of them, so
a ticket sealed by one worker resumes on any other. The keys are drawn in the supervisor
(before the fork, then at each rotation, whether timed or asked on the console) and sent to
the workers, which never rotate on their own (pydist.frontend.tls.ROTATED_ELSEWHERE). A console
line that rotates or reloads a context runs in every worker too, drawing keys of its own
there: the supervisor's ring replaces them right after (Supervisor.push_state)."""
from __future__ import annotations

from typing import Any

from pydist.registry import Registry

KIND = "tls-tickets"
# per TLS listener (its position in the registry): its keys, newest first
RingState = list[tuple[int, list[bytes]]]


def ring_state(reg: Registry) -> RingState:
    return [(k, fe.tls.ring.export()) for k, fe in enumerate(reg.frontends)
            if fe.tls is not None]


def apply(reg: Registry, state: RingState) -> None:
    """In a worker: the supervisor's keys replace ours (each listener matched by position)."""
    frontends = reg.frontends
    for k, raws in state:
        if k < len(frontends) and frontends[k].tls is not None:
            frontends[k].tls.ring.replace(raws)


def start_rotations(reg: Registry, loop: Any, started: set[int]) -> None:
    """In the supervisor: every TLS listener's timed rotation (once each)."""
    from pydist.frontend.tls import schedule_ticket_rotation
    for fe in reg.frontends:
        if fe.tls is not None and id(fe.tls) not in started:
            started.add(id(fe.tls))
            schedule_ticket_rotation(loop, fe.tls)


class TicketSync:
    """The supervisor's side: sends the rings when they changed since the last time."""

    def __init__(self, reg: Registry) -> None:
        self.last = ring_state(reg)

    def changed(self, reg: Registry) -> RingState | None:
        state = ring_state(reg)
        if state == self.last:
            return None
        self.last = state
        return state
