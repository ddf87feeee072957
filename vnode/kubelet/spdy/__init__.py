"""SPDY/3.1, as kubectl and kube-apiserver speak it to a kubelet: framing (`frames`) and the session (`connection`)."""

from vnode.kubelet.spdy.connection import ConnectionClosed, FrameTransport, SpdyConnection, SpdyStream
from vnode.kubelet.spdy.frames import SpdyProtocolError

__all__ = ["ConnectionClosed", "FrameTransport", "SpdyConnection", "SpdyProtocolError", "SpdyStream"]
