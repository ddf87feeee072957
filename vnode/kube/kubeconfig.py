"""Finding and loading API server credentials into a private kubernetes_asyncio `Configuration`.

Owns the search order: an explicit kubeconfig, else `$KUBECONFIG`, else the pod's service account (in-cluster),
else `~/.kube/config`. Tokens that rotate (service account files, exec plugins) are refreshed on use through the
configuration's refresh hook. It never touches the library's global default configuration and never writes back
to a kubeconfig file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.config.config_exception import ConfigException
from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader
from kubernetes_asyncio.config.kube_config import load_kube_config

from vnode.errors import ConfigError

log = logging.getLogger(__name__)

# Where the kubelet mounts a pod's service account credentials.
SERVICE_ACCOUNT_TOKEN = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
SERVICE_ACCOUNT_CA = Path("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt")


async def _from_kubeconfig(paths: str, context: str | None) -> client.Configuration:
    configuration = client.Configuration()
    try:
        loader = await load_kube_config(config_file=paths, context=context, client_configuration=configuration,
                                        persist_config=False)
    except (ConfigException, OSError, KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"kubeconfig {paths}: cannot use it: {exc}") from exc
    if hasattr(loader, "exec_plugin_expiry"):
        # An exec credential plugin gave a token with an expiry: re-run the plugin once it has passed.
        async def refresh_exec_token(config: Any, *_: Any) -> None:
            await loader.load_from_exec_plugin()
            config.api_key["BearerToken"] = loader.token

        configuration.refresh_api_key_hook = refresh_exec_token
    return configuration


def _in_cluster(environ: Mapping[str, str], token_path: Path, ca_path: Path) -> client.Configuration:
    configuration = client.Configuration()
    # try_refresh_token: the loader re-reads the token file every minute, because bound service account tokens
    # are rotated by the kubelet (they expire after an hour by default).
    loader = InClusterConfigLoader(token_filename=str(token_path), cert_filename=str(ca_path),
                                   try_refresh_token=True, environ=dict(environ))
    loader.load_and_set(configuration)
    return configuration


async def load_configuration(kubeconfig: Path | None = None, *, context: str | None = None,
                             environ: Mapping[str, str] | None = None, home: Path | None = None,
                             token_path: Path = SERVICE_ACCOUNT_TOKEN,
                             ca_path: Path = SERVICE_ACCOUNT_CA) -> client.Configuration:
    """A fresh `Configuration` for the first source that exists; `ConfigError` naming what was tried otherwise.

    `context` selects a kubeconfig context and does not apply to in-cluster credentials.
    """
    env = os.environ if environ is None else environ
    if kubeconfig is not None:
        return await _from_kubeconfig(str(kubeconfig), context)
    if env.get("KUBECONFIG"):
        # May list several files (':'-separated), merged like kubectl does.
        return await _from_kubeconfig(env["KUBECONFIG"], context)
    in_cluster_error: Exception | None = None
    # A pod always has KUBERNETES_SERVICE_HOST/PORT injected for the default `kubernetes` Service.
    if env.get("KUBERNETES_SERVICE_HOST") and context is None:
        try:
            return _in_cluster(env, token_path, ca_path)
        except (ConfigException, OSError) as exc:
            in_cluster_error = exc
            log.warning("in-cluster credentials unusable (%s); trying ~/.kube/config", exc)
    default = (home if home is not None else Path.home()) / ".kube" / "config"
    if default.exists():
        return await _from_kubeconfig(str(default), context)
    tried = "no --kubeconfig, no $KUBECONFIG, "
    tried += f"in-cluster failed ({in_cluster_error})" if in_cluster_error else "not running in a pod"
    raise ConfigError(f"no Kubernetes credentials found: {tried}, and {default} does not exist")
