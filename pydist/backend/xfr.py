"""Zone transfers over TCP: which queries are transfers, and when a transfer's last message came.

A backend answers AXFR/IXFR with several messages carrying the query's ID; dnsdist 1.7.3 relays
each one to the client until its isXFRFinished says the transfer is over: any rcode other than
NOERROR, two SOA records in all (AXFR), or the primary's serial seen a third time (IXFR). The
serial is read at the end of the SOA rdata (its names may be compressed), as dnsdist does.
"""
from __future__ import annotations

from pydist.dns.ttl import records_end, skip_name
from pydist.dns.wire import WireError, parse_question

XFR_TYPES = (251, 252)          # IXFR, AXFR
_SOA, _IN = 6, 1


def is_xfr(query: bytes) -> bool:
    """True for an AXFR or IXFR query."""
    try:
        return parse_question(query)[1] in XFR_TYPES
    except WireError:
        return False


class XFRProgress:
    """dnsdist's per-query counters: the primary's serial, SOAs seen, primary serial seen."""

    __slots__ = ("primary_serial", "serial_count", "primary_count", "started")

    def __init__(self) -> None:
        self.primary_serial = 0
        self.serial_count = 0
        self.primary_count = 0
        self.started = False

    def finished(self, resp: bytes) -> bool:
        """Count this message's SOA records; True when it ends the transfer. A message that
        does not parse counts nothing and ends nothing (dnsdist ignores its parse error)."""
        self.started = True
        if records_end(resp) < 0:
            return False
        if resp[3] & 0x0F:
            return True
        done = False
        for serial in _soa_serials(resp):
            if serial is None:          # an SOA too short to hold one: dnsdist stops here
                break
            self.serial_count += 1
            if self.primary_serial == 0:
                self.primary_count += 1
                self.primary_serial = serial
            elif serial == self.primary_serial:
                self.primary_count += 1
                if self.serial_count == 2 or self.primary_count == 3:
                    done = True
        return done


def _soa_serials(resp: bytes) -> list[int | None]:
    """The serial of each IN SOA record of the answer section, in order (None: rdata < 22)."""
    qdcount, ancount = (resp[4] << 8) | resp[5], (resp[6] << 8) | resp[7]
    pos = 12
    for _ in range(qdcount):
        pos = skip_name(resp, pos) + 4
    out: list[int | None] = []
    for _ in range(ancount):
        pos = skip_name(resp, pos)
        rtype, rclass = (resp[pos] << 8) | resp[pos + 1], (resp[pos + 2] << 8) | resp[pos + 3]
        rdlen = (resp[pos + 8] << 8) | resp[pos + 9]
        rdata_end = pos + 10 + rdlen
        if rtype == _SOA and rclass == _IN:
            out.append(None if rdlen < 22 else
                       int.from_bytes(resp[rdata_end - 20:rdata_end - 16], "big"))
        pos = rdata_end
    return out
