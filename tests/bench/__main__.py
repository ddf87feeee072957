"""`make bench`: run every benchmark and print its figures."""

from __future__ import annotations

import asyncio

from tests.bench import sandbox_api


def main() -> None:
    print(asyncio.run(sandbox_api.main()))


if __name__ == "__main__":
    main()
