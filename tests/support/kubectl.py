"""Running real kubectl binaries (the default one, or kubectl.1.27 ... kubectl.1.33 installed beside it)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest


def kubectl_binary(version: str | None = None) -> str:
    """Path of kubectl (or kubectl.<version>); under CI a missing binary fails the test instead of skipping it."""
    directory = os.environ.get("VNODE_TEST_KUBECTL_DIR")
    if directory is None:
        found = shutil.which("kubectl")
        directory = str(Path(found).resolve().parent) if found else ""
    path = Path(directory) / (f"kubectl.{version}" if version else "kubectl")
    if not path.is_file():
        message = f"{path.name} is not installed (looked in {directory or 'PATH'})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(path)


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


@dataclass
class Kubectl:
    binary: str
    kubeconfig: Path

    async def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        check: bool = True,
        timeout_seconds: float = 60,
        env: dict[str, str] | None = None,
    ) -> Result:
        process = await asyncio.create_subprocess_exec(
            self.binary,
            f"--kubeconfig={self.kubeconfig}",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(self.kubeconfig.parent), **(env or {})},
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin), timeout_seconds)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
        result = Result(process.returncode or 0, out.decode(), err.decode())
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr}")
        return result

    def start(self, *args: str) -> Any:
        """Start a long-running kubectl (e.g. `get -w`); the caller reads its stdout and terminates it."""
        return asyncio.create_subprocess_exec(
            self.binary,
            f"--kubeconfig={self.kubeconfig}",
            *args,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(self.kubeconfig.parent)},
        )

    def start_interactive(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Start kubectl with a stdin pipe (attach -i, port-forward); the caller terminates it."""
        return asyncio.create_subprocess_exec(
            self.binary,
            f"--kubeconfig={self.kubeconfig}",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(self.kubeconfig.parent), **(env or {})},
        )
