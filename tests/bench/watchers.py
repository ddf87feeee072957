"""Watcher process for the sandbox benchmark: N watches on pods; prints each watcher's arrival times as JSON.

Usage: python -m tests.bench.watchers KUBECONFIG N NAME_PREFIX COUNT
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp

from tests.bench.kubeconfig import client_from_kubeconfig


async def watch(session: aiohttp.ClientSession, url: str, prefix: str, count: int, rv: str,
                started: asyncio.Event) -> dict[str, float]:
    arrivals: dict[str, float] = {}
    async with session.get(f"{url}/api/v1/namespaces/default/pods",
                           params={"watch": "true", "resourceVersion": rv},
                           timeout=aiohttp.ClientTimeout(total=None)) as response:
        started.set()
        async for line in response.content:
            now = time.monotonic()
            name = json.loads(line)["object"]["metadata"]["name"]
            if name.startswith(prefix):
                arrivals[name] = now
                if len(arrivals) == count:
                    break
    return arrivals


async def main(kubeconfig: Path, watchers: int, prefix: str, count: int) -> None:
    url, tls = client_from_kubeconfig(kubeconfig)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls)) as session:
        async with session.get(f"{url}/api/v1/namespaces/default/pods?limit=1") as response:
            rv = (await response.json())["metadata"]["resourceVersion"]
        started = [asyncio.Event() for _ in range(watchers)]
        tasks = [asyncio.create_task(watch(session, url, prefix, count, rv, s)) for s in started]
        await asyncio.gather(*(s.wait() for s in started))
        print("watching", flush=True)
        results = await asyncio.gather(*tasks)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])))
