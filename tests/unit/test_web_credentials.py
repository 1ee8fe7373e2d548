"""Web credentials: hashPassword()'s `$scrypt$` shape (facts §7), verification of hashed and
plaintext credentials, dnsdist's refusal of a work factor scrypt cannot use."""
from __future__ import annotations

import base64
import re

import pytest

from pydist.web.credentials import Credential, WorkFactorError, hash_password, parse_hashed

SHAPE = re.compile(r"^\$scrypt\$ln=(\d+),p=1,r=8\$([A-Za-z0-9+/=]{24})\$([A-Za-z0-9+/=]{44})$")

# produced by real dnsdist 1.7.3: hashPassword("x")
DNSDIST_HASH_OF_X = ("$scrypt$ln=10,p=1,r=8$eGueCZf0CyOmM9uwvRLfxA==$"
                     "XvD/n5BBjDTHBOhzibVZtnu8jTRVGZ0VpwmXVdoa8M8=")


def test_hash_password_has_dnsdists_shape() -> None:
    h = hash_password("secret")
    m = SHAPE.match(h)
    assert m, h
    assert m.group(1) == "10"
    assert len(base64.b64decode(m.group(2))) == 16 and len(base64.b64decode(m.group(3))) == 32
    assert hash_password("secret") != h, "a fresh salt each time"
    assert SHAPE.match(hash_password("secret", 2048)).group(1) == "11"


@pytest.mark.parametrize("factor", [1000, 1, 0, 3])
def test_work_factor_must_be_a_power_of_two(factor: int) -> None:
    with pytest.raises(WorkFactorError, match="Error setting the work factor"):
        hash_password("x", factor)


def test_dnsdist_hash_verifies() -> None:
    cred = Credential(DNSDIST_HASH_OF_X)
    assert cred.hashed is not None
    assert cred.verify("x")
    assert not cred.verify("y")
    assert cred.verify("x"), "the remembered success still answers"


def test_plaintext_and_hash_plaintext() -> None:
    plain = Credential("pw")
    assert plain.hashed is None and plain.verify("pw") and not plain.verify("pw2")
    hashed = Credential("pw", hash_plaintext=True)
    assert hashed.hashed is not None and hashed.verify("pw") and not hashed.verify("PW")
    assert Credential("").empty


@pytest.mark.parametrize("text", ["$scrypt$", "$scrypt$ln=10,p=1$a$b",
                                  "$scrypt$ln=x,p=1,r=8$AA==$AA==", "$scrypt$ln=10,p=1,r=8$!!$AA==",
                                  "$scrypt$ln=99,p=1,r=8$AA==$AA=="])
def test_malformed_hashes_are_plaintext(text: str) -> None:
    assert parse_hashed(text) is None
    assert Credential(text).verify(text)
