"""The `vnode` command. Parses flags into settings overrides and runs one subcommand; the only place that exits."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from vnode import KUBERNETES_VERSION, __version__
from vnode.agent import run_agent
from vnode.clock import SystemClock
from vnode.config import VnodeSettings, load_settings
from vnode.errors import ConfigError
from vnode.sandbox.main import run_sandbox


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vnode", description="A virtual kubelet that runs CI build pods on "
                                     "Alibaba Cloud ECI or a local Docker engine.")
    parser.add_argument("--config", type=Path, help="YAML settings file (VNODE_* env and flags override it)")
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("version", help="print vnode's version and the Kubernetes version it follows")
    run = commands.add_parser("run", help="run the virtual node against a cluster (KUBECONFIG, --kubeconfig or "
                              "in-cluster)")
    run.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube)")
    run.add_argument("--context", help="kubeconfig context")
    run.add_argument("--node-name", help="name of the virtual node")
    run.add_argument("--provider", choices=["mock"], help="backend for the node's pods")
    run.add_argument("--kubelet-port", type=int, help="port of the kubelet API published on the Node")
    run.add_argument("--disable-taint", action="store_const", const=False, dest="taint_enabled",
                     help="do not taint the node (any pod may then be scheduled here)")
    sandbox = commands.add_parser("sandbox", help="run an in-memory Kubernetes API server and a virtual node on "
                                  "it, for trying vnode without a cluster")
    sandbox.add_argument("--provider", choices=["mock"], help="backend for the virtual node's pods")
    sandbox.add_argument("--state-dir", type=Path, help="where the CA, tokens and kubeconfig are kept")
    sandbox.add_argument("--api-host", help="address to listen on (default 127.0.0.1)")
    sandbox.add_argument("--api-port", type=int, help="port to listen on (default 6443; 0 picks a free one)")
    sandbox.add_argument("--node-name", help="name of the virtual node")
    sandbox.add_argument("--no-node", action="store_true", help="serve only the API server (run `vnode run` "
                         "against its kubeconfig yourself)")
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """Flags the user gave, as a nested dict in the settings' shape (unset flags leave lower sources alone)."""
    out: dict[str, Any] = {}

    def put(path: str, value: Any) -> None:
        if value is None:
            return
        *parents, leaf = path.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value

    put("log_level", args.log_level)
    put("provider.kind", getattr(args, "provider", None))
    put("sandbox.state_dir", getattr(args, "state_dir", None))
    put("sandbox.api_host", getattr(args, "api_host", None))
    put("sandbox.api_port", getattr(args, "api_port", None))
    put("node.name", getattr(args, "node_name", None))
    put("node.taint_enabled", getattr(args, "taint_enabled", None))
    put("kube.kubeconfig", getattr(args, "kubeconfig", None))
    put("kube.context", getattr(args, "context", None))
    put("kubelet.port", getattr(args, "kubelet_port", None))
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "version":
        print(f"vnode {__version__} (Kubernetes v{KUBERNETES_VERSION})")
        return 0
    try:
        settings = load_settings(args.config, _overrides(args))
    except ConfigError as exc:
        print(f"vnode: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "sandbox":
            return asyncio.run(run_sandbox(settings, start_node=not args.no_node))
        if args.command == "run":
            return asyncio.run(_run_node(settings))
    except ConfigError as exc:
        print(f"vnode: {exc}", file=sys.stderr)
        return 2
    return 2


async def _run_node(settings: VnodeSettings) -> int:
    """`vnode run`: the virtual node until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await run_agent(settings, SystemClock(), stop=stop)
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return 0
