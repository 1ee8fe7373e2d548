"""The check a new config passes before anything running changes: its new listeners bound
(a port that cannot be bound, a certificate that does not load, refuse the reload), with
sockets opened here closed again if the reload is refused."""
from __future__ import annotations

from typing import Callable

from pydist.engine import BindError, bind_frontend
from pydist.registry import FrontendDecl
from pydist.reload.diff import ReloadPlan
from pydist.reload.model import ReloadError
from pydist.tls.names import TLSConfigError


def address_of(fe: FrontendDecl) -> tuple[str, int]:
    return (fe.host, fe.port)


def held_addresses(plan: ReloadPlan) -> set[tuple[str, int]]:
    """Addresses a listener being removed still holds: the new one there binds after the old
    is closed, during the swap (its certificates are still loaded now)."""
    return {address_of(fe) for fe in plan.removed_listeners}


def prepare_listeners(plan: ReloadPlan, log: Callable[[str], None],
                      reuse_port: bool = False) -> None:
    """Bind each added listener now (`reuse_port`: with worker processes, which bind one more
    socket per worker). :raises ReloadError: with every socket opened here closed."""
    held = held_addresses(plan)
    bound: list[FrontendDecl] = []
    try:
        for fe in plan.added_listeners:
            if address_of(fe) in held:
                if fe.tls is not None:
                    fe.tls.load()
                continue
            bound.append(fe)
            bind_frontend(fe, log, reuse_port)
    except (BindError, TLSConfigError) as e:
        close_sockets(bound)
        raise ReloadError([str(e)]) from None
    except OSError as e:
        close_sockets(bound)
        raise ReloadError([f"Error opening a listener: {e.strerror or e}"]) from None


def close_sockets(frontends: list[FrontendDecl]) -> None:
    for fe in frontends:
        for sock in (fe.sock_udp, fe.sock_tcp):
            if sock is not None:
                sock.close()
        fe.sock_udp = fe.sock_tcp = None
