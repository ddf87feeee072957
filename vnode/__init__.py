"""vnode: a virtual kubelet that runs CI build pods on serverless containers (ECI) or a local Docker engine."""

__version__ = "0.1.0"

# The Kubernetes minor version whose API and kubelet behaviour vnode follows.
KUBERNETES_VERSION = "1.33.0"
