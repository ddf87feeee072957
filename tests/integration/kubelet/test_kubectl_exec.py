"""`kubectl exec`, `attach` and `port-forward` through the sandbox API server to vnode's kubelet API.

Each kubectl version runs with KUBECTL_REMOTE_COMMAND_WEBSOCKETS true and false: 1.27/1.28 speak SPDY either way,
1.29 SPDY unless told, 1.30+ WebSocket v5 unless told (then SPDY). The mock provider runs exec'd commands as host
processes, so exit codes, stdin, the terminal and its size are real.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex

import pytest

from tests.support.kubelet_world import WAIT, KubeletWorld

pytestmark = pytest.mark.kubectl
VERSIONS = ["1.27", "1.29", "1.31", "1.33"]
MODES = {"websockets": "true", "spdy": "false"}
CASES = [(v, m) for v in VERSIONS for m in MODES]


def env_for(mode: str) -> dict[str, str]:
    return {"KUBECTL_REMOTE_COMMAND_WEBSOCKETS": MODES[mode], "KUBECTL_PORT_FORWARD_WEBSOCKETS": MODES[mode]}


@pytest.mark.parametrize(("version", "mode"), CASES)
async def test_exec_exit_code_is_kubectls_own(world: KubeletWorld, version: str, mode: str) -> None:
    await world.create_pod("box")
    kubectl = world.kubectl(version)
    ok = await kubectl.run("exec", "box", "--", "sh", "-c", "echo out; echo err >&2", env=env_for(mode))
    assert (ok.stdout, ok.stderr) == ("out\n", "err\n")
    failed = await kubectl.run("exec", "box", "--", "sh", "-c", "exit 3", env=env_for(mode), check=False)
    assert failed.returncode == 3
    assert "command terminated with exit code 3" in failed.stderr


@pytest.mark.parametrize(("version", "mode"), CASES)
async def test_exec_stdin_is_piped_until_eof(world: KubeletWorld, version: str, mode: str) -> None:
    await world.create_pod("box")
    payload = b"".join(f"line {n}\n".encode() for n in range(2000))
    result = await world.kubectl(version).run("exec", "-i", "box", "--", "sh", "-c", "cat; echo done",
                                              stdin=payload, env=env_for(mode))
    assert result.stdout.encode() == payload + b"done\n"


@pytest.mark.parametrize(("version", "mode"), CASES)
async def test_exec_tty_gets_a_terminal_and_its_size(world: KubeletWorld, version: str, mode: str) -> None:
    await world.create_pod("box")
    kubectl = world.kubectl(version)
    inner = (f"stty cols 100 rows 30; {shlex.quote(kubectl.binary)} --kubeconfig={kubectl.kubeconfig} exec -it box "
             "-- sh -c 'tty; stty size; exit 4'")
    process = await asyncio.create_subprocess_exec(
        "script", "-qfec", inner, "/dev/null", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "HOME": str(world.tmp), **env_for(mode)})
    out, err = await asyncio.wait_for(process.communicate(b""), WAIT)
    text = out.decode(errors="replace")
    assert re.search(r"/dev/pts/\d+", text), text
    assert "30 100" in text, text  # the resize reached the provider's pseudo-terminal
    assert process.returncode == 4, (text, err)


@pytest.mark.parametrize(("version", "mode"), CASES)
async def test_attach_sees_the_containers_output(world: KubeletWorld, version: str, mode: str) -> None:
    await world.create_pod("box")
    process = await world.kubectl(version).start_interactive("attach", "-i", "box", env=env_for(mode))
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"hello attach\n")
        await process.stdin.drain()
        async with asyncio.timeout(WAIT):
            while True:
                line = await process.stdout.readline()
                assert line, "kubectl attach ended before the echo"
                if b"hello attach" in line:
                    break
    finally:
        process.terminate()
        await process.wait()


@pytest.mark.parametrize(("version", "mode"), CASES)
async def test_port_forward_carries_a_tcp_echo(world: KubeletWorld, version: str, mode: str) -> None:
    await world.create_pod("box", containers=[{"name": "main", "image": "echo",
                                               "ports": [{"containerPort": 8080}]}])
    process = await world.kubectl(version).start_interactive("port-forward", "pod/box", ":8080", env=env_for(mode))
    try:
        assert process.stdout is not None
        async with asyncio.timeout(WAIT):
            line = (await process.stdout.readline()).decode()
        match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+) -> 8080", line)
        assert match, line
        for attempt in range(2):  # two connections through the same session
            reader, writer = await asyncio.open_connection("127.0.0.1", int(match.group(1)))
            message = f"ping {attempt}\n".encode() * 1000
            writer.write(message)
            await writer.drain()
            async with asyncio.timeout(WAIT):
                echoed = await reader.readexactly(len(message))
            assert echoed == message
            writer.close()
            await writer.wait_closed()
    finally:
        process.terminate()
        await process.wait()
