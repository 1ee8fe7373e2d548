"""Random ids for servers and rules, as dnsdist makes them (boost's random version-4 UUID).

Made here from os.urandom because the uuid module pulls in platform and costs start-up time
in every config, while only a config that names an `id` needs uuid's parser."""
from __future__ import annotations

import os


def random_uuid() -> str:
    """A version-4 UUID in its lowercase text form."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40   # version 4
    b[8] = (b[8] & 0x3F) | 0x80   # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
