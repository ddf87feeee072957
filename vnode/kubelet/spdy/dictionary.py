"""The zlib dictionary that every SPDY/3 header block is compressed with (SPDY/3 draft, section 2.6.10.1).

It owns this one constant and nothing else. The 1423 bytes must match the spec exactly (a peer's zlib refuses a
stream primed with any other dictionary); tests pin its SHA-256.

The spec lays it out as common header names and method names, each prefixed by its length as a 4-byte big-endian
integer, followed by raw text: status codes and reason phrases, dates, MIME types and cache/charset tokens.
"""

from __future__ import annotations

from typing import Final

_LENGTH_PREFIXED: Final = (
    "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
    "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
    "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
    "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
    "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
    "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
    "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
    "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie",
    "keep-alive", "origin",
)

# Concatenated with no separators, exactly as the spec gives it (including "utf-" and the final "enq=0.").
_RAW_TEXT: Final = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information"
    "204 No Content"
    "301 Moved Permanently"
    "400 Bad Request"
    "401 Unauthorized"
    "403 Forbidden"
    "404 Not Found"
    "500 Internal Server Error"
    "501 Not Implemented"
    "503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 "
    "Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,public"
    "private"
    "max-age="
    "gzip,deflate,sdch"
    "charset=utf-8"
    "charset=iso-8859-1,utf-,*,enq=0."
)

SPDY3_DICTIONARY: Final[bytes] = (
    b"".join(len(word).to_bytes(4, "big") + word.encode("ascii") for word in _LENGTH_PREFIXED)
    + _RAW_TEXT.encode("ascii")
)
