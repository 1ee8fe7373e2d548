"""What other modules name of DoT without loading OpenSSL: counter names, handshake-failure
causes and the config error (so a config without TLS never imports pyOpenSSL/cryptography)."""
from __future__ import annotations

HANDSHAKE_ERRORS = (
    ("dhKeyTooSmall", "DH key too small", "dh key too small", "DHKeyTooSmall"),
    ("inappropriateFallBack", "Inappropriate fallback", "inappropriate fallback",
     "InappropriateFallBack"),
    ("noSharedCipher", "No shared cipher", "no shared cipher", "NoSharedCipher"),
    ("unknownCipherType", "Unknown cipher type", "unknown cipher type", "UnknownCipher"),
    ("unknownKeyExchangeType", "Unknown exchange type", "unknown key exchange type",
     "UnknownKeyExchangeType"),
    ("unknownProtocol", "Unknown protocol", "unknown protocol", "UnknownProtocol"),
    ("unsupportedEC", "Unsupported EC", "unsupported elliptic curve", "UnsupportedEC"),
    ("unsupportedProtocol", "Unsupported protocol", "unsupported protocol",
     "UnsupportedProtocol"),
)

# per-frontend TLS counters (the API's names), in showTCPStats' column order; they live in
# the listener's tcp_counters so the web API and showTCPStats read one dict
FRONTEND_TLS_COUNTERS = ("tlsNewSessions", "tlsResumptions", "tlsUnknownTicketKey",
                         "tlsInactiveTicketKey", "tls10Queries", "tls11Queries", "tls12Queries",
                         "tls13Queries", "tlsUnknownQueries")


class TLSConfigError(Exception):
    """A certificate, key or option that cannot be used: the text is dnsdist's."""
