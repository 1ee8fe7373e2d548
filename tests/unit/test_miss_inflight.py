"""The plain miss's in-flight state is made without InFlight.__init__ (its fields written out
in PacketPath._forward, one frame less per miss): it must hold what __init__ would."""
from __future__ import annotations

from pydist.backend.udp import InFlight
from pydist.registry import FrontendDecl
from pydist.transport import Transport
from pydist.verdict import FORWARD
from tests.unit.test_one_path import CLIENT, make, query


def test_forwarded_state_holds_what_init_sets() -> None:
    path, reg = make("""
newServer{address="127.0.0.1:9"}
pc = newPacketCache(100)
getPool(""):setCache(pc)
""")
    reg.servers[0].up_status = True
    fe = FrontendDecl("127.0.0.1", 53).udp_state
    data = query("miss.test.")
    st = path.query_step(data, CLIENT, None, Transport.DO53_UDP, fe, 12.5)
    assert st.__class__ is InFlight and st.kind == FORWARD
    qname_end = 12 + len(b"\x04miss\x04test\x00")
    ref = InFlight(data[:2], CLIENT, fe, data[12:qname_end + 4], 12.5, path.tick,
                   reg.pools[""].cache, st.cache_key, data, qname_end,
                   (data[2] << 8) | data[3], Transport.DO53_UDP)
    for name in InFlight.__slots__:
        assert hasattr(st, name) or not hasattr(ref, name), name
        if hasattr(ref, name) and name not in ("server", "wire", "proxy", "xfr"):
            assert getattr(st, name) == getattr(ref, name), name
    assert st.cache_key is not None and st.server is reg.servers[0] and st.wire == data
