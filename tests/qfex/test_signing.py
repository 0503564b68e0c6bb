"""Signing of the auth message against the vectors of docs/qfex-protocol.md §2.7."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time

import pytest

from orders.qfex import Credentials, auth_message, new_nonce, sign

VECTORS = [
    (
        "V1",
        "qfex_secret_test_0001",
        "00112233445566778899aabbccddeeff",
        1760545414,
        "641fc06a4d74e4401ab25d6fddc1f633e3af39ef5dccb9736f4de04d122584e4",
    ),
    ("V2", "s3cr3t", "c0ffee", 1700000000, "b6818b2217062db668cbd718be5c5939a7d43a3cdd5dfacba2a45afb784601ac"),
    (
        "V3",
        "qfex_secret_yyyyyy",
        "deadbeefdeadbeefdeadbeefdeadbeef",
        1767225600,
        "d61700e0245153a8411553143b209a34c5a5268806640f473839200642325571",
    ),
    (
        "V4",
        "qfex_secret_test",
        "c0ffee",
        1760545414,
        "9a892254ce0416371a78a4352130b7825a2f5fb442b12ddfa7c2f5202ef045dc",
    ),
    (
        "V5",
        "qfex_secret_test_0001",
        "74d6e87ee896e89ed1341e51a6d0fcba",
        1795471879,
        "c52e4faacfd9839812b09e12c12d0b4831c863de4e32b20da98289cbf8647688",
    ),
    (
        "V6",
        "s3cr3t",
        "1f501940cce63ff1a6357f021fc1d56b",
        1795471879,
        "676ee561a481e7aa609aa6137cd04943a1ffabe11b4a8925e02b6fcaa61a9c3b",
    ),
]

V1_SECRET, V1_NONCE, V1_TS = "qfex_secret_test_0001", "00112233445566778899aabbccddeeff", 1760545414
# The "common mistakes" digests of §2.7, all with V1's key and nonce.
MISTAKES = {
    "float timestamp": (f"{V1_NONCE}:{V1_TS}.0", "f84444dd23dfef98512e793cd3d00affbfcbbc824b10f6be3298cae45d653583"),
    "milliseconds": (f"{V1_NONCE}:{V1_TS}000", "3819084a270cb4869856df80a9560736e6f6891ba59cbbb3f83495bd58339e8a"),
    "no colon": (f"{V1_NONCE}{V1_TS}", "bb1cc617b6b50018022dd9c8923816129ce5fdec09d26a68ba7ee57210cab3dd"),
    "order swapped": (f"{V1_TS}:{V1_NONCE}", "64adf84b08dc4a021d6e5b5cf7c90c6d57acdd484523a4c206b024b193fb1140"),
}
BASE64_MISTAKE = "ZB/Aak105EAasl1v3cH2M+OvOe9dzLlzb03gTRIlhOQ="


@pytest.mark.parametrize(("name", "secret", "nonce", "unix_ts", "expected"), VECTORS, ids=[v[0] for v in VECTORS])
def test_sign_matches_the_published_vectors(name, secret, nonce, unix_ts, expected):
    assert sign(secret, nonce, unix_ts) == expected


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_common_mistakes_give_other_digests(mistake):
    signed_text, digest = MISTAKES[mistake]
    # The table is what that mistake really produces…
    assert hmac.new(V1_SECRET.encode(), signed_text.encode(), hashlib.sha256).hexdigest() == digest
    # …and our signature is not it.
    assert sign(V1_SECRET, V1_NONCE, V1_TS) != digest


def test_signature_is_lowercase_hex_not_base64():
    signature = sign(V1_SECRET, V1_NONCE, V1_TS)
    assert re.fullmatch(r"[0-9a-f]{64}", signature)
    assert base64.b64encode(bytes.fromhex(signature)).decode() == BASE64_MISTAKE
    assert signature != BASE64_MISTAKE


@pytest.mark.parametrize("bad_ts", [1760545414.0, "1760545414", True])
def test_sign_refuses_a_timestamp_that_is_not_whole_seconds(bad_ts):
    with pytest.raises(TypeError):
        sign(V1_SECRET, V1_NONCE, bad_ts)


def test_auth_message_shape_and_signature():
    creds = Credentials("qfex_pub_test", V1_SECRET)
    message = auth_message(creds, now=V1_TS, nonce=V1_NONCE)
    assert message == {
        "type": "auth",
        "params": {
            "hmac": {
                "public_key": "qfex_pub_test",
                "nonce": V1_NONCE,
                "unix_ts": V1_TS,
                "signature": "641fc06a4d74e4401ab25d6fddc1f633e3af39ef5dccb9736f4de04d122584e4",
            }
        },
    }
    assert type(message["params"]["hmac"]["unix_ts"]) is int


def test_auth_message_with_subaccount():
    creds = Credentials("qfex_pub_test", "s3cr3t")
    message = auth_message(creds, "0b0f7d5e-2c61-4f5e-9c8a-111111111111", now=1700000000, nonce="c0ffee")
    assert message["params"]["account_id"] == "0b0f7d5e-2c61-4f5e-9c8a-111111111111"
    assert message["params"]["hmac"]["signature"] == VECTORS[1][4]


def test_auth_message_defaults_to_now_and_a_fresh_nonce():
    creds = Credentials("qfex_pub_test", "s3cr3t")
    before = int(time.time())
    first = auth_message(creds)["params"]["hmac"]
    second = auth_message(creds)["params"]["hmac"]
    after = int(time.time())
    assert before <= first["unix_ts"] <= after
    assert first["nonce"] != second["nonce"]
    assert first["signature"] == sign("s3cr3t", first["nonce"], first["unix_ts"])


@pytest.mark.parametrize("nonce", ["", "not-hex!", "g" * 32, "a" * 101])
def test_auth_message_refuses_an_invalid_nonce(nonce):
    with pytest.raises(ValueError, match="nonce"):
        auth_message(Credentials("qfex_pub_test", "s3cr3t"), now=1, nonce=nonce)


def test_auth_message_accepts_a_100_char_nonce():
    message = auth_message(Credentials("qfex_pub_test", "s3cr3t"), now=1, nonce="ab" * 50)
    assert message["params"]["hmac"]["nonce"] == "ab" * 50


def test_new_nonce_is_32_hex_and_fresh():
    nonces = {new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", nonce) for nonce in nonces)


def test_credentials_never_show_the_secret():
    creds = Credentials("qfex_pub_visible", "qfex_secret_do_not_show")
    for text in (repr(creds), str(creds), f"{creds}", repr([creds]), repr({"c": creds})):
        assert "qfex_secret_do_not_show" not in text
        assert "qfex_pub_visible" in text


def test_credentials_validation_does_not_echo_values():
    with pytest.raises(ValueError, match="public_key") as raised:
        Credentials("", "qfex_secret_do_not_show")
    assert "qfex_secret_do_not_show" not in str(raised.value)
    with pytest.raises(ValueError, match="secret must"):
        Credentials("qfex_pub", "")


def test_credentials_are_frozen():
    creds = Credentials("qfex_pub", "s")
    with pytest.raises(AttributeError):
        creds.secret = "other"  # type: ignore[misc]
