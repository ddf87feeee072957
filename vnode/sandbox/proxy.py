"""Moving bytes between an API client and a kubelet, the way kube-apiserver's proxy does.

Raw upgrade splices (SPDY and WebSocket pass through byte for byte), streamed HTTP (logs, node proxy) and relayed
WebSockets (apimachinery's upgradeaware.go). Locations come from `kubelet_location`; this module must not
authenticate or authorize callers nor read the store.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
from collections.abc import Sequence

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from vnode.sandbox.kubelet_location import KubeletLocation, ProxyError
from vnode.util.front import RequestHead, close_writer, write_simple_response

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 7.6.1) that the reverse proxy drops; the upgrade path keeps Upgrade.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
    }
)
# The apiserver's authentication and impersonation filters strip these before proxying.
_CREDENTIALS = frozenset({"authorization", "host"})
# apimachinery corsRemovingTransport drops the backend's CORS answer headers.
_CORS = frozenset(f"access-control-allow-{n}" for n in ("credentials", "headers", "methods", "origin"))
_RESPONSE_DROPPED = _HOP_BY_HOP | _CORS | {"transfer-encoding", "upgrade"}
_LOG_ERROR_BODY_LIMIT = 50000  # GenericHttpResponseChecker maxReadLength
# errors.NewGenericServerResponse: status -> (reason, message) for a kubelet error during pods/log.
_GENERIC_RESPONSES = {
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, but may still be "
        "processing the request",
    ),
}


def error_response(error: ProxyError) -> web.Response:
    if error.code == 204:
        return web.Response(status=204)
    return web.Response(status=error.code, body=error.body(), content_type="application/json")


def log_error(status: int, body: str, pod_name: str) -> ProxyError:
    """What kube-apiserver makes of a kubelet's non-2xx answer to containerLogs (response_checker.go)."""
    if status == 500:
        return ProxyError(
            500, "InternalError", f"Internal error occurred: {body}", {"causes": [{"message": body}]}
        )
    if status == 400:
        return ProxyError(400, "BadRequest", body)
    reason, message = (
        "",
        f"the server responded with the status code {status} but did not return more information",
    )
    if status == 403:
        reason, message = "Forbidden", body  # the kubelet's message says who may not do what: kept
    elif status in _GENERIC_RESPONSES:
        reason, message = _GENERIC_RESPONSES[status]
    elif status >= 500:
        reason = "InternalError"
        message = f"an error on the server ({json.dumps(body)}) has prevented the request from succeeding"
    # Verb "" and resource pods/log, hence the odd "( pods/log name)".
    return ProxyError(
        status, reason, f"{message} ( pods/log {pod_name})", {"name": pod_name, "kind": "pods/log"}
    )


def _error_text(netloc: str, exc: BaseException) -> str:
    """Describe a failed dial or exchange roughly as Go's net and crypto/tls errors read."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        exc = exc.certificate_error
    elif isinstance(exc, aiohttp.ClientConnectorError):
        exc = exc.os_error
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"tls: failed to verify certificate: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"remote error: tls: {exc.reason or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"dial tcp {netloc}: connect: connection refused"
    if isinstance(exc, TimeoutError):
        return f"dial tcp {netloc}: i/o timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError | asyncio.IncompleteReadError):
        return "EOF"
    if isinstance(exc, OSError) and exc.strerror:
        return f"dial tcp {netloc}: {exc.strerror.lower()}"
    return str(exc) or type(exc).__name__


def _forwarded_for(prior: Sequence[str], peer: object) -> str:
    """utilnet.AppendForwardedForHeader: prior values joined, then the client's IP."""
    ip = str(peer[0]) if isinstance(peer, tuple) and peer else ""
    return ", ".join([*prior, ip])


def _dropped(lowered: str, named_by_connection: set[str]) -> bool:
    """Request headers that never reach the kubelet: hop-by-hop ones, credentials, Impersonate-*."""
    return (
        lowered in _HOP_BY_HOP
        or lowered in _CREDENTIALS
        or lowered in named_by_connection
        or lowered.startswith("impersonate-")
        or lowered == "x-forwarded-for"  # re-added with the client's address appended
    )


def _sendable_close_code(code: object) -> int:
    # RFC 6455 7.4: 1005/1006/1015 and unassigned codes must not be sent in a close frame.
    if isinstance(code, int) and (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999):
        return code
    return 1000


async def _pump(source: asyncio.StreamReader, sink: asyncio.StreamWriter, chunk_bytes: int) -> None:
    """Copy until EOF, draining after every write (backpressure); errors propagate."""
    while data := await source.read(chunk_bytes):
        sink.write(data)
        await sink.drain()


_WebSocket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _ws_pump(source: _WebSocket, sink: _WebSocket) -> None:
    """Relay messages until `source` closes, then close `sink` with the same code."""
    try:
        while True:
            message = await source.receive()
            if message.type is aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            elif message.type is aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type is aiohttp.WSMsgType.CLOSE:
                reason = (message.extra or "").encode()
                await sink.close(code=_sendable_close_code(message.data), message=reason)
                return
            elif message.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                await sink.close()
                return
            elif message.type is aiohttp.WSMsgType.ERROR:
                await sink.close(code=1011)  # internal error: the other side failed
                return
    except ConnectionError:
        log.debug("websocket relay peer went away")


class KubeletProxy:
    """Carries requests from the sandbox API server to kubelets over TLS with the kubelet-client identity.

    `ssl_context` holds the client certificate the sandbox presents and decides whether the kubelet's
    serving certificate is verified (kube-apiserver skips that without --kubelet-certificate-authority).
    """

    def __init__(
        self,
        ssl_context: ssl.SSLContext,
        *,
        connect_timeout_seconds: float = 10.0,
        response_timeout_seconds: float = 30.0,
        close_grace_seconds: float = 10.0,
        disconnect_poll_seconds: float = 1.0,
        max_websocket_message_bytes: int = 4 * 1024 * 1024,
        chunk_bytes: int = 64 * 1024,
    ) -> None:
        self._ssl = ssl_context
        self._connect_timeout = connect_timeout_seconds
        self._response_timeout = response_timeout_seconds
        self._close_grace = close_grace_seconds
        self._disconnect_poll = disconnect_poll_seconds
        self._max_ws_message = max_websocket_message_bytes
        self._chunk = chunk_bytes
        self._client: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    def _session(self) -> aiohttp.ClientSession:
        if self._client is None:
            self._client = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=0),
                # No total or read timeout: log follows and node proxy streams are long-running.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self._connect_timeout),
                auto_decompress=False,
            )
        return self._client

    # Upgrades taken over by the front protocol (SPDY/3.1 always, WebSocket on a fresh connection).

    async def splice_upgrade(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        location: KubeletLocation,
    ) -> None:
        """Forward an upgrade request to the kubelet and, on 101, copy bytes both ways; closes both ends."""
        try:
            await self._splice_upgrade(head, reader, writer, location)
        except asyncio.CancelledError:
            writer.transport.abort()  # shutting down: no graceful TLS close
            raise
        except OSError as exc:  # a peer vanished mid-exchange (ConnectionError, ssl.SSLError)
            log.debug("upgrade splice to %s ended: %r", location.netloc, exc)
        finally:
            await close_writer(writer, self._close_grace)

    async def _splice_upgrade(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        location: KubeletLocation,
    ) -> None:
        try:
            async with asyncio.timeout(self._connect_timeout):
                backend_reader, backend_writer = await asyncio.open_connection(
                    location.host,
                    location.port,
                    ssl=self._ssl,
                    server_hostname=location.host,
                    limit=self._chunk,
                )
        except (OSError, TimeoutError) as exc:
            # upgradeaware.go dial(): the Responder turns this plain error into a 500 Status.
            text = f"error dialing backend: {_error_text(location.netloc, exc)}"
            await write_simple_response(writer, 500, ProxyError(500, "", text).body())
            return
        try:
            await self._exchange(head, reader, writer, backend_reader, backend_writer, location)
        except asyncio.CancelledError:
            backend_writer.transport.abort()
            raise
        finally:
            await close_writer(backend_writer, self._close_grace)

    async def _exchange(
        self,
        head: RequestHead,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        backend_reader: asyncio.StreamReader,
        backend_writer: asyncio.StreamWriter,
        location: KubeletLocation,
    ) -> None:
        try:
            backend_writer.write(self._upgrade_request(head, writer, location))
            await backend_writer.drain()
            async with asyncio.timeout(self._response_timeout):
                raw = await backend_reader.readuntil(b"\r\n\r\n")
            status, headers = _parse_response_head(raw)
        except (
            OSError,
            TimeoutError,
            ValueError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
        ) as exc:
            text = _error_text(location.netloc, exc)
            await write_simple_response(writer, 500, ProxyError(500, "", text).body())
            return
        if status == 101:
            writer.write(raw)  # the 101 head goes back byte for byte (negotiated protocol headers included)
            await writer.drain()
            await self._splice(reader, writer, backend_reader, backend_writer)
        elif status >= 400:
            # Upstream echoes an error answer to the client, then closes (10 s deadline).
            writer.write(raw)
            try:
                async with asyncio.timeout(10.0):
                    await _copy_body(backend_reader, writer, headers, self._chunk)
            except (TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                log.debug("relaying the kubelet's %d answer stopped: %r", status, exc)
        else:
            text = f"invalid upgrade response: status code {status}"
            await write_simple_response(writer, 500, ProxyError(500, "", text).body())

    @staticmethod
    def _upgrade_request(head: RequestHead, client: asyncio.StreamWriter, location: KubeletLocation) -> bytes:
        """The client's head re-targeted at the kubelet: all Upgrade, X-Stream-Protocol-Version and
        Sec-WebSocket-* lines kept in order; credentials, Impersonate-* and hop-by-hop headers dropped."""
        named = {token.lower() for token in head.header_values("Connection")} - {"upgrade"}
        lines = [f"{head.method} {location.target} HTTP/1.1", f"Host: {location.netloc}"]
        # Content-Length/Transfer-Encoding stay: any body bytes follow through the splice unchanged.
        lines += [f"{n}: {v}" for n, v in head.headers.items() if not _dropped(n.lower(), named)]
        lines.append("Connection: Upgrade")
        prior = head.headers.getall("X-Forwarded-For", [])
        lines.append(f"X-Forwarded-For: {_forwarded_for(prior, client.get_extra_info('peername'))}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    async def _splice(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        backend_reader: asyncio.StreamReader,
        backend_writer: asyncio.StreamWriter,
    ) -> None:
        up = asyncio.create_task(_pump(reader, backend_writer, self._chunk), name="splice client->kubelet")
        down = asyncio.create_task(_pump(backend_reader, writer, self._chunk), name="splice kubelet->client")
        sinks = {up: backend_writer, down: writer}
        try:
            pending: set[asyncio.Task[None]] = {up, down}
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task.exception() is not None:
                        log.debug("splice direction failed: %r", task.exception())
                        return
                    # EOF one way: half-close the other side when the transport can (plain TCP); TLS
                    # cannot, so end the tunnel as upgradeaware.go does when either copy finishes.
                    if not sinks[task].can_write_eof():
                        return
                    sinks[task].write_eof()
        finally:
            for task in sinks:
                task.cancel()
            await asyncio.gather(*sinks, return_exceptions=True)

    # Plain requests and WebSockets that reached aiohttp.

    async def stream_log_websocket(
        self, request: web.Request, location: KubeletLocation, pod_name: str
    ) -> web.StreamResponse:
        """pods/log over a WebSocket, as kube-apiserver serves it itself (wsstream): the kubelet's plain log is
        read over HTTP and sent as binary frames (`binary.k8s.io`, or no subprotocol) or base64 text frames
        (`base64.binary.k8s.io`)."""
        try:
            upstream = await self._session().get(URL(location.url, encoded=True), allow_redirects=False)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            text = _error_text(location.netloc, exc)
            return error_response(ProxyError(500, "", f'Get "{location.url}": {text}'))
        try:
            if not 200 <= upstream.status <= 206:
                body = await _read_limited(upstream.content, _LOG_ERROR_BODY_LIMIT)
                return error_response(log_error(upstream.status, body.decode("utf-8", "replace"), pod_name))
            ws = web.WebSocketResponse(protocols=("binary.k8s.io", "base64.binary.k8s.io"))
            await ws.prepare(request)
            as_text = ws.ws_protocol == "base64.binary.k8s.io"
            async for chunk in upstream.content.iter_any():
                if as_text:
                    await ws.send_str(base64.b64encode(chunk).decode())
                else:
                    await ws.send_bytes(chunk)
            await ws.close()
            return ws
        finally:
            upstream.release()

    async def proxy_http(
        self, request: web.Request, location: KubeletLocation, *, pod_log_name: str | None = None
    ) -> web.StreamResponse:
        """Stream the kubelet's answer chunk by chunk; stop the upstream request when the client goes away.

        With `pod_log_name` this behaves like the pods/log LocationStreamer (a fresh GET, text/plain, kubelet
        errors turned into Status); without, like the node proxy's reverse proxy (method, body and headers
        forwarded, status and end-to-end headers copied back).
        """
        if not location.path and request.method in ("GET", "HEAD"):
            # upgradeaware.go proxyRedirectsforRootPath: an empty proxy path redirects to ".../".
            suffix = f"?{request.query_string}" if request.query_string else ""
            return web.Response(status=301, headers={"Location": request.path + "/" + suffix})
        log_mode = pod_log_name is not None
        try:
            upstream = await self._session().request(
                "GET" if log_mode else request.method,
                URL(location.url, encoded=True),
                headers=None if log_mode else self._forward_headers(request),
                data=request.content if request.body_exists and not log_mode else None,
                allow_redirects=False,
                auto_decompress=log_mode,
            )
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            text = _error_text(location.netloc, exc)
            if log_mode:  # the url.Error of the log GET, a plain error: 500 without reason
                return error_response(ProxyError(500, "", f'Get "{location.url}": {text}'))
            # apimachinery proxy.Transport wraps transport errors in a 503.
            return error_response(
                ProxyError(503, "ServiceUnavailable", f"error trying to reach service: {text}")
            )
        complete = False
        try:
            if pod_log_name is not None and not 200 <= upstream.status <= 206:
                body = await _read_limited(upstream.content, _LOG_ERROR_BODY_LIMIT)
                complete = True
                return error_response(
                    log_error(upstream.status, body.decode("utf-8", "replace"), pod_log_name)
                )
            response = web.StreamResponse(status=upstream.status)
            if log_mode:
                response.content_type = "text/plain"
            else:
                for name, value in upstream.headers.items():
                    if name.lower() not in _RESPONSE_DROPPED:
                        response.headers.add(name, value)
            await response.prepare(request)
            complete = await self._stream_body(request, upstream, response)
            if complete:
                await response.write_eof()
            return response
        finally:
            if complete:
                upstream.release()
            else:
                upstream.close()  # drop the kubelet connection rather than pool a half-read one

    async def _stream_body(
        self, request: web.Request, upstream: aiohttp.ClientResponse, response: web.StreamResponse
    ) -> bool:
        """True when the kubelet's body ended; False when the client left first."""
        while True:
            try:
                # Bounded waits let an idle follow notice a departed client (aiohttp does not cancel
                # handlers by default); a cancelled readany loses no data.
                async with asyncio.timeout(self._disconnect_poll):
                    chunk = await upstream.content.readany()
            except TimeoutError:
                if request.transport is None or request.transport.is_closing():
                    return False
                continue
            except (aiohttp.ClientError, OSError) as exc:
                log.debug("kubelet stream broke: %r", exc)
                upstream.close()
                return True  # end the response normally, as Go's io.Copy does
            if not chunk:
                return True
            try:
                await response.write(chunk)  # aiohttp writes through at once; drains past 64 KiB
            except ConnectionError:
                return False

    @staticmethod
    def _forward_headers(request: web.Request) -> CIMultiDict[str]:
        named = {t.strip().lower() for v in request.headers.getall("Connection", []) for t in v.split(",")}
        # aiohttp frames the body and writes its own WebSocket handshake headers.
        named |= {"upgrade", "transfer-encoding", "sec-websocket-key", "sec-websocket-version"}
        named |= {"sec-websocket-protocol", "sec-websocket-extensions"}
        headers = CIMultiDict((n, v) for n, v in request.headers.items() if not _dropped(n.lower(), named))
        prior = request.headers.getall("X-Forwarded-For", [])
        peer = request.transport.get_extra_info("peername") if request.transport else None
        headers["X-Forwarded-For"] = _forwarded_for(prior, peer)
        # proxy.Transport (node proxy wraps its transport) adds these.
        headers["X-Forwarded-Uri"] = request.path
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        return headers

    async def relay_websocket(self, request: web.Request, location: KubeletLocation) -> web.StreamResponse:
        """Open a WebSocket to the kubelet offering the client's subprotocols, accept the client with the one
        the kubelet chose, and relay messages both ways. Returns a Status response if the kubelet refuses."""
        lines = request.headers.getall("Sec-WebSocket-Protocol", [])
        offered = [p.strip() for line in lines for p in line.split(",") if p.strip()]
        try:
            upstream = await self._session().ws_connect(
                URL(location.url, encoded=True),
                method=request.method,
                protocols=offered,
                headers=self._forward_headers(request),
                autoping=True,
                max_msg_size=self._max_ws_message,
                timeout=aiohttp.ClientWSTimeout(ws_close=self._close_grace),
            )
        except aiohttp.WSServerHandshakeError as exc:
            # aiohttp drops the refusal's body; report its status the way a Status would.
            status = exc.status if exc.status >= 400 else 500
            text = f"unable to upgrade connection: {exc.status} {exc.message}"
            return error_response(ProxyError(status, "", text))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            text = f"error dialing backend: {_error_text(location.netloc, exc)}"
            return error_response(ProxyError(500, "", text))
        client = web.WebSocketResponse(
            protocols=(upstream.protocol,) if upstream.protocol else (),
            autoping=True,
            compress=False,
            max_msg_size=self._max_ws_message,
            timeout=self._close_grace,
        )
        try:
            await client.prepare(request)
            await self._relay_messages(client, upstream)
        finally:
            await upstream.close()
            if client.prepared and not client.closed:
                await client.close()
        return client

    async def _relay_messages(
        self, client: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse
    ) -> None:
        up = asyncio.create_task(_ws_pump(client, upstream), name="websocket client->kubelet")
        down = asyncio.create_task(_ws_pump(upstream, client), name="websocket kubelet->client")
        try:
            _, pending = await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
            if pending:
                # The finished side closed the other; let that close handshake end, within bounds.
                await asyncio.wait(pending, timeout=self._close_grace)
        finally:
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)


def _parse_response_head(raw: bytes) -> tuple[int, CIMultiDict[str]]:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit() or len(parts[1]) != 3:
        raise ValueError(f"malformed HTTP response {lines[0]!r}")
    headers: CIMultiDict[str] = CIMultiDict()
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.add(name.strip(), value.strip())
    return int(parts[1]), headers


async def _copy_body(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, headers: CIMultiDict[str], chunk_bytes: int
) -> None:
    """Copy one response body as framed by its headers (RFC 9112 6.3), raw bytes unchanged."""
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        while True:
            size_line = await reader.readuntil(b"\r\n")
            writer.write(size_line)
            size = int(size_line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                    writer.write(trailer)
                writer.write(trailer)
                await writer.drain()
                return
            await _copy_exactly(reader, writer, size + 2, chunk_bytes)  # data plus its CRLF
    elif "Content-Length" in headers:
        await _copy_exactly(reader, writer, int(headers["Content-Length"]), chunk_bytes)
    else:
        await _pump(reader, writer, chunk_bytes)  # delimited by the connection closing


async def _copy_exactly(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, size: int, chunk: int
) -> None:
    while size > 0:
        data = await reader.readexactly(min(size, chunk))
        size -= len(data)
        writer.write(data)
        await writer.drain()


async def _read_limited(content: aiohttp.StreamReader, limit: int) -> bytes:
    body = bytearray()
    while len(body) < limit and (data := await content.read(limit - len(body))):
        body += data
    return bytes(body)
