"""ECI API errors as the gateway sends them: `{RequestId, HostId, Code, Message, Recommend}` with an HTTP status.

Owns the error type raised anywhere in the emulator and the table of codes → HTTP statuses. It must not know
about aiohttp; the server turns an `EciApiError` into a response.
"""

from __future__ import annotations

from typing import Any

# HTTP statuses of the codes the emulator sends (eci-wire.md §4, Alibaba gateway error tables).
HTTP_STATUS: dict[str, int] = {
    "MissingParameter": 400,
    "InvalidParameter": 400,
    "InvalidRegionId": 400,
    "SignatureDoesNotMatch": 400,
    "SignatureNonceUsed": 400,
    "InvalidTimeStamp.Expired": 400,
    "InvalidTimeStamp.Format": 400,
    "InvalidSignatureMethod": 400,
    "InvalidAccessKeyId.NotFound": 404,
    "InvalidAction.NotFound": 404,
    "InvalidContainerGroupId.NotFound": 404,
    "IncorrectStatus": 400,
    "Throttling": 400,
    "Degrade.Api": 400,
    "Throttling.Vcpu.PerDay": 403,
    "OperationDenied.NoStock": 403,
    "Spot.NotMatched": 403,
    "Zone.NotOnSale": 403,
    "InvalidVSwitchId.IpNotEnough": 403,
    "QuotaExceeded": 403,
    "InternalError": 500,
    "ServiceUnavailable": 503,
}

DEFAULT_MESSAGES: dict[str, str] = {
    "Throttling": "Request was denied due to request throttling.",
    "InternalError": "The request processing has failed due to some unknown error, exception or failure.",
    "ServiceUnavailable": "The request has failed due to a temporary failure of the server.",
    "OperationDenied.NoStock": "The resource is out of stock in the specified zone. Please try other types, or "
                               "choose other regions and zones.",
}


class EciApiError(Exception):
    """One error answer. `http_status` defaults to the table above, else 400 (5xx codes must be listed)."""

    def __init__(self, code: str, message: str | None = None, *, http_status: int | None = None) -> None:
        self.code = code
        self.message = message if message is not None else DEFAULT_MESSAGES.get(code, code)
        self.http_status = http_status if http_status is not None else HTTP_STATUS.get(code, 400)
        super().__init__(f"{self.code}: {self.message}")

    def body(self, request_id: str, host_id: str) -> dict[str, Any]:
        return {"RequestId": request_id, "HostId": host_id, "Code": self.code, "Message": self.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={self.code}&product=Eci&requestId={request_id}"}


def missing(name: str) -> EciApiError:
    return EciApiError("MissingParameter",
                       f'The input parameter "{name}" that is mandatory for processing this request is not supplied.')


def invalid(name: str, why: str) -> EciApiError:
    return EciApiError("InvalidParameter", f'The specified parameter "{name}" is not valid: {why}')
