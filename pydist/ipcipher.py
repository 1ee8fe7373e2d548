"""ipcipher, as dnsdist 1.7.3 implements it (makeIPCipherKey, ComboAddress:ipencrypt/ipdecrypt,
RemoteLogAction's ipEncryptKey): a key derived from a password with PBKDF2-HMAC-SHA1 (salt
"ipcipheripcipher", 50,000 rounds, 16 bytes); IPv4 addresses enciphered with ipcrypt (J.-P.
Aumasson's four-byte permutation network keyed by the 16 bytes), IPv6 addresses (mapped IPv4
ones included) with one block of AES-128. The result is an address of the same family.
"""
from __future__ import annotations

import hashlib
import ipaddress
import socket

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

SALT = b"ipcipheripcipher"
ROUNDS = 50000
KEY_ERROR = "Need 128 bits of key for ipcrypt"


def make_key(password: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha1", password, SALT, ROUNDS, 16)


def _rotl(b: int, r: int) -> int:
    return ((b << r) & 0xFF) | (b >> (8 - r))


def _forward(s: list[int]) -> list[int]:
    b0, b1, b2, b3 = s
    b0 = (b0 + b1) & 0xFF
    b2 = (b2 + b3) & 0xFF
    b1 = _rotl(b1, 2) ^ b0
    b3 = _rotl(b3, 5) ^ b2
    b0 = _rotl(b0, 4)
    b0 = (b0 + b3) & 0xFF
    b2 = (b2 + b1) & 0xFF
    b1 = _rotl(b1, 3) ^ b2
    b3 = _rotl(b3, 7) ^ b0
    b2 = _rotl(b2, 4)
    return [b0, b1, b2, b3]


def _backward(s: list[int]) -> list[int]:
    b0, b1, b2, b3 = s
    b2 = _rotl(b2, 4)
    b1 = _rotl(b1 ^ b2, 5)
    b3 = _rotl(b3 ^ b0, 1)
    b0 = (b0 - b3) & 0xFF
    b2 = (b2 - b1) & 0xFF
    b0 = _rotl(b0, 4)
    b1 = _rotl(b1 ^ b0, 6)
    b3 = _rotl(b3 ^ b2, 3)
    b0 = (b0 - b1) & 0xFF
    b2 = (b2 - b3) & 0xFF
    return [b0, b1, b2, b3]


def _xor(s: list[int], k: bytes) -> list[int]:
    return [a ^ b for a, b in zip(s, k)]


def ipcrypt_encrypt(addr: bytes, key: bytes) -> bytes:
    s = _xor(list(addr), key[0:4])
    for i in (4, 8, 12):
        s = _xor(_forward(s), key[i:i + 4])
    return bytes(s)


def ipcrypt_decrypt(addr: bytes, key: bytes) -> bytes:
    s = _xor(list(addr), key[12:16])
    for i in (8, 4, 0):
        s = _xor(_backward(s), key[i:i + 4])
    return bytes(s)


def _aes(key: bytes) -> Cipher:
    return Cipher(algorithms.AES(key), modes.ECB())  # noqa: S305 -- one block, as ipcipher


def encrypt_host(host: str, key: bytes) -> str:
    """The enciphered address (text form) of host; raises ValueError with dnsdist's text for a
    key that is not 16 bytes long."""
    return _convert(host, key, True)


def decrypt_host(host: str, key: bytes) -> str:
    return _convert(host, key, False)


def _convert(host: str, key: bytes, encrypt: bool) -> str:
    if len(key) != 16:
        raise ValueError(KEY_ERROR)
    ip = ipaddress.ip_address(host.split("%", 1)[0])
    if ip.version == 4:
        f = ipcrypt_encrypt if encrypt else ipcrypt_decrypt
        return str(ipaddress.IPv4Address(f(ip.packed, key)))
    ctx = _aes(key).encryptor() if encrypt else _aes(key).decryptor()
    # inet_ntop's text, as dnsdist prints it (a mapped IPv4 address in its dotted form)
    return socket.inet_ntop(socket.AF_INET6, ctx.update(ip.packed) + ctx.finalize())
