"""DNSCrypt v2 listeners as dnsdist 1.7.3 serves them: certificates and key files (cert),
the boxes (crypto), a listener's certificate set (context) and the exchange on bytes (query).
The frontends that use them are in pydist/frontend/dnscrypt.py."""
from pydist.dnscrypt.cert import DNSCryptCert, DNSCryptFileError
from pydist.dnscrypt.context import DNSCryptContext, DNSCryptError
from pydist.dnscrypt.query import DNSCryptQuery, read_packet

__all__ = ["DNSCryptCert", "DNSCryptContext", "DNSCryptError", "DNSCryptFileError",
           "DNSCryptQuery", "read_packet"]
