"""Free loopback ports, and a side-effect-free test of whether someone has bound one."""
from __future__ import annotations

import errno
import random
import socket


# Outside Linux's ephemeral range (32768-60999): a port probed free here is not taken a moment
# later by some process's outgoing connection, which is what makes bind(0) probing racy.
QUIET_PORTS = range(20000, 32768)


def free_port(host: str = "127.0.0.1") -> int:
    """A port currently free for both TCP and UDP on host."""
    for _ in range(200):
        port = random.choice(QUIET_PORTS)
        if not is_bound(port, socket.SOCK_STREAM, host) and not is_bound(port, socket.SOCK_DGRAM, host):
            return port
    raise OSError("no free loopback port")


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """Distinct free ports."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port(host)
        if port not in ports:
            ports.append(port)
    return ports


def is_bound(port: int, kind: int, host: str = "127.0.0.1") -> bool:
    """True when another socket holds (host, port); probing by bind sends no packet."""
    with socket.socket(socket.AF_INET, kind) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False
