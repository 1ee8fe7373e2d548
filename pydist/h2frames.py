"""HTTP/2 frame lengths followed across reads, for both ends of DoH (listener and backend).

h2o and nghttp2 refuse a frame longer than the maximum as soon as its 9-byte header says so;
the h2 library would first buffer the whole announced frame (megabytes that may never come).
"""
from __future__ import annotations


class FrameLengths:
    """Where the next frame header starts in the byte stream, and the one cut between reads."""
    __slots__ = ("skip", "head")

    def __init__(self, skip: int = 0) -> None:
        self.skip = skip        # bytes before the next frame header (the rest of a frame, a preface)
        self.head = b""         # a frame header cut between two reads

    def too_long(self, data: bytes, limit: int) -> bool:
        """True once a frame header in `data` announces more than `limit` bytes."""
        i, n = 0, len(data)
        while i < n:
            if self.skip:
                step = min(self.skip, n - i)
                self.skip -= step
                i += step
                continue
            need = 9 - len(self.head)
            self.head += data[i:i + need]
            i += need
            if len(self.head) < 9:
                return False
            self.skip = int.from_bytes(self.head[:3], "big")
            self.head = b""
            if self.skip > limit:
                return True
        return False
