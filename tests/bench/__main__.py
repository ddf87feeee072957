"""`make bench`: run every benchmark and print its figures."""

from __future__ import annotations

import asyncio
import sys

from tests.bench import docker_pods, eci_pods, kubelet_streams, node_agent, sandbox_api


def main() -> None:
    benchmarks = {"sandbox_api": sandbox_api, "node_agent": node_agent, "kubelet_streams": kubelet_streams,
                  "docker_pods": docker_pods, "eci_pods": eci_pods}
    chosen = sys.argv[1:] or list(benchmarks)  # `python -m tests.bench kubelet_streams` runs one
    for name in chosen:
        print(asyncio.run(benchmarks[name].main()), flush=True)


if __name__ == "__main__":
    main()
