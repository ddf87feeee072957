"""`make bench`: run every benchmark and print its figures."""

from __future__ import annotations

import asyncio

from tests.bench import node_agent, sandbox_api


def main() -> None:
    for benchmark in (sandbox_api, node_agent):
        print(asyncio.run(benchmark.main()), flush=True)


if __name__ == "__main__":
    main()
