"""ipcipher (pydist/ipcipher.py): ipcrypt's published test vectors, the values real dnsdist
1.7.3 gives for makeIPCipherKey("secret") and ComboAddress:ipencrypt, and decryption undoing
encryption for any address."""
from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pydist import ipcipher


@pytest.mark.parametrize("plain,enciphered", [
    ("127.0.0.1", "114.62.227.59"), ("8.8.8.8", "46.48.51.50"), ("1.2.3.4", "171.238.15.199")])
def test_ipcrypt_vectors(plain: str, enciphered: str) -> None:
    assert ipcipher.encrypt_host(plain, b"some 16-byte key") == enciphered


def test_as_dnsdist() -> None:
    key = ipcipher.make_key(b"secret")
    assert key.hex() == "cddc0c6469ed2a54b846b5667d32730e"
    assert ipcipher.encrypt_host("192.0.2.1", key) == "154.37.200.149"
    assert ipcipher.encrypt_host("2001:db8::1", key) == "2592:3680:6837:1285:6566:b37c:8911:df53"


def test_key_length() -> None:
    with pytest.raises(ValueError, match="Need 128 bits of key for ipcrypt"):
        ipcipher.encrypt_host("192.0.2.1", b"short")


@given(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), st.binary(min_size=16,
                                                                         max_size=16))
def test_round_trip(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, key: bytes) -> None:
    out = ipcipher.encrypt_host(str(addr), key)
    assert ipaddress.ip_address(ipcipher.decrypt_host(out, key)) == addr
