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
from vnode.agent import internal_ip, run_agent
from vnode.clock import SystemClock
from vnode.config import VnodeSettings, load_settings
from vnode.cost.ledger import CostLedger
from vnode.cost.query import FORMATS, ReportQuery
from vnode.cost.reports import render_report
from vnode.errors import ConfigError, Invalid, VnodeError
from vnode.kube.client import KubeClient
from vnode.kubelet.certs import request_serving_certificate
from vnode.sandbox.eci.main import run_eci_emulator
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
    run.add_argument("--provider", choices=["mock", "docker", "eci"], help="backend for the node's pods")
    run.add_argument("--kubelet-port", type=int, help="port of the kubelet API published on the Node")
    run.add_argument("--tls-cert-file", type=Path, help="kubelet API serving certificate (default: self-signed)")
    run.add_argument("--tls-private-key-file", type=Path, help="private key of --tls-cert-file")
    run.add_argument("--client-ca-file", type=Path, help="CA that kubelet API client certificates must chain to "
                     "(the cluster CA: kube-apiserver's kubelet-client certificate)")
    run.add_argument("--disable-taint", action="store_const", const=False, dest="taint_enabled",
                     help="do not taint the node (any pod may then be scheduled here)")
    sandbox = commands.add_parser("sandbox", help="run an in-memory Kubernetes API server and a virtual node on "
                                  "it, for trying vnode without a cluster")
    sandbox.add_argument("--provider", choices=["mock", "docker", "eci"], help="backend for the virtual node's pods "
                         "(eci: an in-process ECI emulator, running containers on Docker when an engine answers)")
    sandbox.add_argument("--state-dir", type=Path, help="where the CA, tokens and kubeconfig are kept")
    sandbox.add_argument("--api-host", help="address to listen on (default 127.0.0.1)")
    sandbox.add_argument("--api-port", type=int, help="port to listen on (default 6443; 0 picks a free one)")
    sandbox.add_argument("--node-name", help="name of the virtual node")
    sandbox.add_argument("--no-node", action="store_true", help="serve only the API server (run `vnode run` "
                         "against its kubeconfig yourself)")
    emulator = commands.add_parser("eci-emulator", help="serve Alibaba Cloud ECI's API locally (for the Aliyun "
                                   "SDK and vnode's eci provider, with no cloud account)")
    emulator.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    emulator.add_argument("--port", type=int, help="port to listen on (default 8780; 0 picks a free one)")
    emulator.add_argument("--region", help="region the emulator is (default cn-hangzhou)")
    emulator.add_argument("--runtime", choices=["sim", "docker"], help="sim: nothing runs (outcomes from the "
                          "container's env or command); docker: containers run on the Docker engine (DOCKER_HOST)")
    emulator.add_argument("--docker-node-name", help="node name on the docker runtime's container labels "
                          "(default eci-emulator): what this emulator owns, and removes, in the engine")
    emulator.add_argument("--access-key-id", help="the AccessKey ID accepted")
    emulator.add_argument("--access-key-secret", help="its secret (prefer VNODE_ECI_EMULATOR__ACCESS_KEY_SECRET)")
    _cost_parser(commands)
    certs = commands.add_parser("certs", help="the kubelet API's serving certificate")
    certs_commands = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    request = certs_commands.add_parser(
        "request", help="ask the cluster for a kubelet-serving certificate (a CertificateSigningRequest) and wait "
        "until someone approves it with `kubectl certificate approve`")
    request.add_argument("--kubeconfig", type=Path, help="kubeconfig file (default: KUBECONFIG, in-cluster, ~/.kube)")
    request.add_argument("--context", help="kubeconfig context")
    request.add_argument("--node-name", help="name of the virtual node (the certificate is for system:node:NAME)")
    request.add_argument("--address", action="append", dest="addresses", metavar="ADDR",
                         help="an IP or DNS name the API server reaches the node at (repeatable; default: the "
                         "node's InternalIP); the node name is always included")
    request.add_argument("--cert-file", type=Path, help="where to write the certificate (default: "
                         "kubelet.tls_cert_file)")
    request.add_argument("--key-file", type=Path, help="where to write the private key, mode 0600 (default: "
                         "kubelet.tls_key_file)")
    request.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for approval (default 600)")
    return parser


def _cost_parser(commands: Any) -> None:
    cost = commands.add_parser("cost", help="what the node's pods cost, from the cost ledger")
    actions = cost.add_subparsers(dest="cost_command", required=True, metavar="ACTION")
    report = actions.add_parser("report", help="cost per build, job, namespace or label over a time window")
    report.add_argument("--by", default="build", help="build, job, namespace or label:KEY (default build)")
    report.add_argument("--since", help="start: a duration before now (7d, 12h, 30m) or an RFC 3339 time "
                        "(default: the first pod in the ledger)")
    report.add_argument("--until", help="end: a duration before now or an RFC 3339 time (default: now)")
    report.add_argument("--format", choices=FORMATS, default="table", help="table (default), csv, json, or html "
                        "(one self-contained page with a chart)")
    report.add_argument("--output", "-o", type=Path, help="write the report to this file (default: stdout)")
    report.add_argument("--db", type=Path, help="the ledger file (default: cost.db_path)")


async def _cost_report(settings: VnodeSettings, args: argparse.Namespace) -> int:
    """`vnode cost report`: read the ledger (while vnode may be writing it) and print or write one report."""
    params = {"by": args.by, "since": args.since, "until": args.until, "format": args.format}
    try:
        query = ReportQuery.from_params({k: v for k, v in params.items() if v is not None})
    except Invalid as exc:
        print(f"vnode cost report: {exc}", file=sys.stderr)
        return 2
    ledger = await CostLedger.open(args.db or settings.cost.db_path, create=False)
    try:
        _, body = await render_report(ledger, query, clock=SystemClock())
    except Invalid as exc:
        print(f"vnode cost report: {exc}", file=sys.stderr)
        return 2
    finally:
        await ledger.aclose()
    if args.output is not None:
        args.output.write_bytes(body)
    else:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    return 0


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
    put("kubelet.tls_cert_file", getattr(args, "tls_cert_file", None))
    put("kubelet.tls_key_file", getattr(args, "tls_private_key_file", None))
    put("kubelet.client_ca_file", getattr(args, "client_ca_file", None))
    if args.command == "eci-emulator":
        put("eci_emulator.host", args.host)
        put("eci_emulator.port", args.port)
        put("eci_emulator.region_id", args.region)
        put("eci_emulator.runtime", args.runtime)
        put("eci_emulator.docker_node_name", args.docker_node_name)
        put("eci_emulator.access_key_id", args.access_key_id)
        put("eci_emulator.access_key_secret", args.access_key_secret)
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
        if args.command == "eci-emulator":
            return asyncio.run(run_eci_emulator(settings.eci_emulator))
        if args.command == "certs":
            return asyncio.run(_request_certificate(settings, args))
        if args.command == "cost":
            return asyncio.run(_cost_report(settings, args))
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


async def _request_certificate(settings: VnodeSettings, args: argparse.Namespace) -> int:
    """`vnode certs request`: a kubelet-serving CSR, approved by someone else, written to the given files."""
    cert_file = args.cert_file or settings.kubelet.tls_cert_file
    key_file = args.key_file or settings.kubelet.tls_key_file
    if cert_file is None or key_file is None:
        raise ConfigError("vnode certs request: give --cert-file and --key-file (or set kubelet.tls_cert_file and "
                          "kubelet.tls_key_file)")
    node = settings.node.name
    addresses = args.addresses or [internal_ip(settings)]

    def created(name: str) -> None:
        print(f"created CertificateSigningRequest {name} for system:node:{node} ({', '.join(addresses)}); "
              f"waiting up to {args.timeout:g} s for approval. Approve it with:\n"
              f"  kubectl certificate approve {name}", flush=True)

    clock = SystemClock()
    kube = settings.kube
    try:
        async with await KubeClient.connect(kube.kubeconfig, context=kube.context, qps=kube.qps, burst=kube.burst,
                                            clock=clock) as client:
            await request_serving_certificate(client, node_name=node, addresses=addresses, key_file=key_file,
                                              cert_file=cert_file, clock=clock, timeout_seconds=args.timeout,
                                              on_created=created)
    except ConfigError:
        raise
    except (TimeoutError, VnodeError) as exc:
        print(f"vnode: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {cert_file} and {key_file} (mode 0600). Serve them with kubelet.tls_cert_file={cert_file} and "
          f"kubelet.tls_key_file={key_file} (or VNODE_KUBELET__TLS_CERT_FILE / VNODE_KUBELET__TLS_KEY_FILE).")
    return 0
