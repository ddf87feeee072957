"""RPC signature v1 as aliyun-python-sdk-core computes it, and the gateway's refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest
from aliyunsdkcore.auth.composer import rpc_signature_composer
from hypothesis import given
from hypothesis import strategies as st

from vnode.clock import ManualClock
from vnode.sandbox.eci.errors import EciApiError
from vnode.sandbox.eci.signature import SignatureVerifier, sign, string_to_sign

KEY_ID, SECRET = "AKID-test", "s3cret/+="


def sdk_signed(params: dict[str, str], method: str = "GET", secret: str = SECRET,
               body: dict[str, str] | None = None) -> tuple[dict[str, str], str]:
    """Parameters as the SDK puts them on the wire (query, plus any form body) and its string-to-sign."""
    url, sdk_text = rpc_signature_composer.get_signed_url(dict(params), KEY_ID, secret, "JSON", method, body or {})
    wire = dict(parse_qsl(urlsplit(url).query, keep_blank_values=True))
    wire.update(body or {})
    return wire, sdk_text


def verifier(clock: ManualClock | None = None) -> SignatureVerifier:
    return SignatureVerifier({KEY_ID: SECRET}, clock or ManualClock(datetime.now(UTC)), nonce_ttl_seconds=900)


def test_known_vector_matches_the_sdk() -> None:
    """A fixed parameter set: same string-to-sign and the same HMAC-SHA1 signature as the SDK's composer."""
    wire, sdk_text = sdk_signed({"Action": "CreateContainerGroup", "Container.1.Command.1": "sh -c 'echo *~'",
                                 "Tag.1.Value": "ä/b+c", "Version": "2018-08-08"})
    assert string_to_sign("GET", wire) == sdk_text
    assert sign(sdk_text, SECRET) == wire["Signature"]


@given(st.dictionaries(st.text(st.characters(codec="utf-8"), min_size=1, max_size=12),
                       st.text(st.characters(codec="utf-8"), max_size=20), max_size=6))
def test_string_to_sign_agrees_with_the_sdk_for_any_parameters(params: dict[str, str]) -> None:
    method = "POST"
    compose = getattr(rpc_signature_composer, "__compose_string_to_sign")
    assert string_to_sign(method, params) == compose(method, {k: v for k, v in params.items() if k != "Signature"})


def test_a_correctly_signed_request_names_its_access_key() -> None:
    wire, _ = sdk_signed({"Action": "DescribeContainerGroups"})
    assert verifier().verify("GET", wire) == KEY_ID


def test_form_body_parameters_are_part_of_the_signature() -> None:
    wire, _ = sdk_signed({"Action": "DescribeContainerGroupStatus"}, method="POST", body={"Limit": "5"})
    assert verifier().verify("POST", wire) == KEY_ID


def test_wrong_secret_is_signature_does_not_match_with_the_server_string_to_sign() -> None:
    wire, sdk_text = sdk_signed({"Action": "DescribeContainerGroups"}, secret="other")
    with pytest.raises(EciApiError) as caught:
        verifier().verify("GET", wire)
    assert (caught.value.code, caught.value.http_status) == ("SignatureDoesNotMatch", 400)
    assert caught.value.message.split(":", 1)[1] == sdk_text


def test_method_is_signed() -> None:
    wire, _ = sdk_signed({"Action": "DescribeContainerGroups"}, method="GET")
    with pytest.raises(EciApiError, match="SignatureDoesNotMatch"):
        verifier().verify("POST", wire)


def test_unknown_access_key_is_not_found() -> None:
    wire, _ = sdk_signed({"Action": "DescribeContainerGroups"})
    with pytest.raises(EciApiError) as caught:
        SignatureVerifier({"someone-else": SECRET}, ManualClock(datetime.now(UTC))).verify("GET", wire)
    assert (caught.value.code, caught.value.http_status) == ("InvalidAccessKeyId.NotFound", 404)


@pytest.mark.parametrize("field", ["Signature", "SignatureNonce", "Timestamp", "AccessKeyId"])
def test_missing_signature_field_is_missing_parameter(field: str) -> None:
    wire, _ = sdk_signed({"Action": "DescribeContainerGroups"})
    del wire[field]
    with pytest.raises(EciApiError) as caught:
        verifier().verify("GET", wire)
    assert caught.value.code == "MissingParameter" and field in caught.value.message


def test_a_replayed_nonce_is_refused() -> None:
    wire, _ = sdk_signed({"Action": "DescribeContainerGroups"})
    check = verifier()
    check.verify("GET", wire)
    with pytest.raises(EciApiError, match="SignatureNonceUsed"):
        check.verify("GET", wire)


async def test_a_nonce_may_be_reused_after_its_ttl() -> None:
    clock = ManualClock(datetime.now(UTC))
    wire, _ = sdk_signed({"Action": "DescribeContainerGroups"})
    check = SignatureVerifier({KEY_ID: SECRET}, clock, nonce_ttl_seconds=60, max_skew_seconds=900)
    check.verify("GET", wire)
    await clock.advance(61)
    assert check.verify("GET", wire) == KEY_ID


def test_a_stale_timestamp_is_expired() -> None:
    wire, _ = sdk_signed({"Action": "DescribeContainerGroups"})
    late = ManualClock(datetime(2030, 1, 1, tzinfo=UTC))
    with pytest.raises(EciApiError, match="InvalidTimeStamp.Expired"):
        verifier(late).verify("GET", wire)
