"""ECI error codes → retry decision and `vnode.errors`; parameter flattening; credentials never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnode.errors import BackendUnavailable, ConfigError, Conflict, InvalidPod, NotFound, Throttled, VnodeError
from vnode.providers.eci.client import flatten, retry_kind, translate
from vnode.providers.eci.credentials import Credentials, EnvCredentials, FileCredentials


def mapped(code: str, status: int | None) -> VnodeError:
    return translate("CreateContainerGroup", code, status, "msg", "REQ-1", credentials="env",
                     retry_after_seconds=2.0)


@pytest.mark.parametrize(("code", "status"), [("Throttling", 400), ("Throttling.User", 400),
                                              ("Rejected.Throttling", 400), ("Degrade.Api", 400)])
def test_throttling_variants_are_retried_as_throttled(code: str, status: int) -> None:
    error = mapped(code, status)
    assert retry_kind(code, status) == "throttled"
    assert isinstance(error, Throttled) and error.retry_after_seconds == 2.0


@pytest.mark.parametrize(("code", "status"), [("InternalError", 500), ("ServiceUnavailable", 503),
                                              ("SDK.HttpError", None), ("Request Timeout", 408)])
def test_server_and_network_errors_are_retried_as_unavailable(code: str, status: int | None) -> None:
    assert retry_kind(code, status) == "unavailable" and isinstance(mapped(code, status), BackendUnavailable)


def test_daily_vcpu_cap_is_throttled_but_not_fast_retried() -> None:
    error = mapped("Throttling.Vcpu.PerDay", 403)
    assert retry_kind("Throttling.Vcpu.PerDay", 403) is None
    assert isinstance(error, Throttled) and error.retry_after_seconds == 3600.0


@pytest.mark.parametrize(("code", "status", "kind"), [
    ("MissingParameter", 400, InvalidPod), ("InvalidParameter", 400, InvalidPod),
    ("OperationDenied.NoStock", 403, InvalidPod), ("InvalidContainerGroupId.NotFound", 404, NotFound),
    ("IncorrectStatus", 400, Conflict), ("Forbidden.RAM", 403, ConfigError), ("InvalidRegionId", 400, ConfigError),
    ("InvalidAccessKeyId.NotFound", 404, ConfigError), ("SignatureDoesNotMatch", 400, ConfigError),
    ("InvalidAccessKeySecret", 400, ConfigError), ("SDK.EndpointResolvingError", None, ConfigError),
])
def test_client_errors_are_not_retried_and_map_by_code(code: str, status: int | None, kind: type[Exception]) -> None:
    assert retry_kind(code, status) is None and type(mapped(code, status)) is kind


def test_messages_carry_code_and_request_id() -> None:
    assert str(mapped("MissingParameter", 400)) == "ECI CreateContainerGroup: MissingParameter: msg (RequestId REQ-1)"


def test_signature_errors_leave_out_the_echoed_string_to_sign() -> None:
    error = translate("DescribeContainerGroups", "SignatureDoesNotMatch", 400, "string to sign is:SecurityToken%3Dx",
                      None, credentials="the environment")
    assert "SecurityToken" not in str(error) and "the environment" in str(error)


def test_flatten_numbers_lists_and_nested_groups() -> None:
    params = {"Container": [{"Name": "main", "Command": ["sh", "-c"], "Stdin": True,
                             "EnvironmentVar": [{"Key": "A", "Value": "1"}], "Cpu": 0.5, "WorkingDir": None}]}
    assert flatten(params) == {"Container.1.Name": "main", "Container.1.Command.1": "sh",
                               "Container.1.Command.2": "-c", "Container.1.Stdin": "true",
                               "Container.1.EnvironmentVar.1.Key": "A", "Container.1.EnvironmentVar.1.Value": "1",
                               "Container.1.Cpu": "0.5"}


def test_credentials_repr_hides_every_value() -> None:
    shown = repr(Credentials("LTAIkeyid", "s3cret", "sts-token")) + str(Credentials("LTAIkeyid", "s3cret"))
    assert not any(value in shown for value in ("LTAIkeyid", "s3cret", "sts-token"))


def test_missing_env_secret_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="ALIBABA_CLOUD_ACCESS_KEY_SECRET"):
        EnvCredentials({"ALIBABA_CLOUD_ACCESS_KEY_ID": "id"})


def test_env_sts_token_is_read() -> None:
    source = EnvCredentials({"ALIBABA_CLOUD_ACCESS_KEY_ID": "id", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "secret",
                             "ALIBABA_CLOUD_SECURITY_TOKEN": "token\n"})
    assert source.current() == Credentials("id", "secret", "token")


def test_file_credentials_reread_after_an_in_place_write(tmp_path: Path) -> None:
    (tmp_path / "ALIBABA_CLOUD_ACCESS_KEY_ID").write_text("id\n")
    (tmp_path / "ALIBABA_CLOUD_ACCESS_KEY_SECRET").write_text("old")
    source = FileCredentials(tmp_path)
    assert source.current().access_key_secret == "old"
    (tmp_path / "ALIBABA_CLOUD_ACCESS_KEY_SECRET").write_text("newer")
    assert source.current() == Credentials("id", "newer")
