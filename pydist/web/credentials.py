"""Web credentials as dnsdist 1.7.3 keeps them (facts §7): plaintext or `$scrypt$` hashes.

`hashPassword()` output is `$scrypt$ln=<log2 N>,p=1,r=8$<b64 16-byte salt>$<b64 32-byte hash>`;
a configured password or API key of that shape is checked by hashing what the client sent.
"""
from __future__ import annotations

import base64
import binascii
import os
from collections import OrderedDict

PREFIX = "$scrypt$"
DEFAULT_WORK_FACTOR = 1024
_SALT_LEN, _HASH_LEN, _R, _P = 16, 32, 8, 1


class WorkFactorError(ValueError):
    """scrypt refuses the work factor (not a power of two above 1): dnsdist's wording."""

    def __init__(self) -> None:
        super().__init__("Error setting the work factor to the scrypt context to hash the "
                         "supplied password")


def _scrypt(password: bytes, salt: bytes, n: int, r: int, p: int, dklen: int = _HASH_LEN) -> bytes:
    import hashlib   # OpenSSL's hashes load with the first credential used, not at start-up
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=dklen,
                          maxmem=256 * r * n * p + (1 << 20))


def hash_password(password: str, work_factor: int = DEFAULT_WORK_FACTOR) -> str:
    """hashPassword(): a fresh salt, scrypt with N=work_factor, r=8, p=1."""
    if work_factor < 2 or work_factor & (work_factor - 1):
        raise WorkFactorError()
    salt = os.urandom(_SALT_LEN)
    try:
        digest = _scrypt(password.encode("latin-1", "replace"), salt, work_factor, _R, _P)
    except (ValueError, MemoryError):
        raise WorkFactorError() from None
    return (f"{PREFIX}ln={work_factor.bit_length() - 1},p={_P},r={_R}$"
            f"{base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}")


def parse_hashed(text: str) -> tuple[int, int, int, bytes, bytes] | None:
    """(N, r, p, salt, hash) of a `$scrypt$` string, or None when it is not one."""
    if not text.startswith(PREFIX):
        return None
    parts = text[len(PREFIX):].split("$")
    if len(parts) != 3:
        return None
    params: dict[str, int] = {}
    try:
        for item in parts[0].split(","):
            k, v = item.split("=", 1)
            params[k] = int(v)
        salt = base64.b64decode(parts[1], validate=True)
        digest = base64.b64decode(parts[2], validate=True)
        ln, r, p = params["ln"], params["r"], params["p"]
    except (ValueError, KeyError, binascii.Error):
        return None
    if not 1 <= ln <= 20 or not 1 <= r <= 32 or not 1 <= p <= 16 or not digest:
        return None
    return 1 << ln, r, p, salt, digest


def is_hashed(text: str) -> bool:
    return parse_hashed(text) is not None


class Credential:
    """One configured password or API key; verify() compares in constant time.

    Successful checks of a hashed credential are remembered (a few entries) so that a
    dashboard polling every second does not cost one scrypt per request on the DNS loop.
    """

    _CACHE_SIZE = 8

    def __init__(self, text: str, hash_plaintext: bool = False) -> None:
        self.text = text
        parsed = parse_hashed(text)
        if parsed is None and hash_plaintext and text:
            text = hash_password(text)
            parsed = parse_hashed(text)
        self.hashed = parsed
        self._ok: OrderedDict[bytes, None] = OrderedDict()

    @property
    def empty(self) -> bool:
        return not self.text

    def is_slow(self, supplied: str) -> bool:
        """True when verify() would run scrypt (a hashed credential not recently matched)."""
        return self.hashed is not None and self._tag(supplied) not in self._ok

    @staticmethod
    def _tag(supplied: str) -> bytes:
        import hashlib
        return hashlib.sha256(supplied.encode("latin-1", "replace")).digest()

    def compute(self, supplied: str) -> bool:
        """The comparison itself, touching no shared state: safe in a worker thread."""
        import hmac
        given = supplied.encode("latin-1", "replace")
        if self.hashed is None:
            return hmac.compare_digest(given, self.text.encode("latin-1", "replace"))
        n, r, p, salt, digest = self.hashed
        try:
            return hmac.compare_digest(_scrypt(given, salt, n, r, p, len(digest)), digest)
        except (ValueError, MemoryError):
            return False

    def remember(self, supplied: str, ok: bool) -> bool:
        """Keep a success of a hashed credential (a few entries); returns ok."""
        if ok and self.hashed is not None:
            self._ok[self._tag(supplied)] = None
            if len(self._ok) > self._CACHE_SIZE:
                self._ok.popitem(last=False)
        return ok

    def verify(self, supplied: str) -> bool:
        if self.hashed is not None and self._tag(supplied) in self._ok:
            return True
        return self.remember(supplied, self.compute(supplied))
