"""Everything vnode says to kube-apiserver: the JSON REST client, informers, the event recorder, resource paths.

The only package that imports kubernetes_asyncio; the rest of vnode sees JSON dicts and `vnode.errors`.
"""

from vnode.kube.client import KubeClient
from vnode.kube.events import EventRecorder
from vnode.kube.informer import Informer, key_of

__all__ = ["EventRecorder", "Informer", "KubeClient", "key_of"]
