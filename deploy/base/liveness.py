"""Liveness probe for vnode's kubelet API: `python3 liveness.py [PORT]`, exit 0 when vnode answers HTTP over TLS.

The kubelet API authenticates every request, /healthz included, so a probe without credentials gets
401 Unauthorized. A 401 still proves what liveness needs: vnode's event loop completed a TLS handshake and answered
a request. A bare TCP probe cannot tell that, because the kernel accepts connections for a listener whose process is
stuck. Exit 1 on no answer within 5 s or anything that is not an HTTP response.
"""

import socket
import ssl
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 10250
context = ssl.create_default_context()
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE  # the self-signed default certificate; no secret is sent
try:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        tls.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        status_line = tls.recv(64)
except OSError as exc:
    print(f"vnode kubelet API on port {port}: {exc}", file=sys.stderr)
    sys.exit(1)
if not status_line.startswith(b"HTTP/1.1 "):
    print(f"vnode kubelet API on port {port}: not an HTTP answer: {status_line!r}", file=sys.stderr)
    sys.exit(1)
