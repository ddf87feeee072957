"""The Docker test environment itself (tests/tools/docker-env.sh): the engine answers, the offline images are there and
behave as the provider's tests assume, containers share a sandbox's network namespace and a bind-mounted directory,
and what a test creates is removed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiodocker
import pytest
from aiodocker.containers import DockerContainer

from tests.support.docker import Images, leftovers, sandbox_network, started_container
from tests.support.wait import eventually
from vnode.providers.docker.naming import LABEL_NODE

WAIT_SECONDS = 30
# The listener may not be up yet when the client starts: retry the connection, bounded (busybox nc exits 1 when
# the connection is refused).
CLIENT = "for i in $(seq 100); do echo hello-over-loopback | nc 127.0.0.1 8080 && exit 0; sleep 0.1; done; exit 1"


def _config(image: str, node: str, *, cmd: list[str] | None = None, **host: Any) -> dict[str, Any]:
    config: dict[str, Any] = {"Image": image, "Labels": {LABEL_NODE: node}, "HostConfig": host}
    if cmd is not None:
        config["Cmd"] = cmd
    return config


async def _exit_code(container: DockerContainer) -> int:
    async with asyncio.timeout(WAIT_SECONDS):
        result = await container.wait()
    return int(result["StatusCode"])


async def test_engine_answers_version(docker: aiodocker.Docker) -> None:
    version = await docker.version()
    assert version.get("ApiVersion") and version.get("Version")


@pytest.mark.parametrize(("kind", "command"), [("pause", ["/pause"]), ("tools", ["sh"])])
async def test_test_image_is_in_the_engine(docker: aiodocker.Docker, images: Images, kind: str,
                                           command: list[str]) -> None:
    info = await docker.images.inspect(getattr(images, kind))
    assert info["Config"]["Cmd"] == command


async def test_pause_container_exits_at_once_on_sigterm(docker: aiodocker.Docker, images: Images,
                                                        no_leftovers: str) -> None:
    async with started_container(docker, _config(images.pause, no_leftovers, NetworkMode=sandbox_network())) as pause:
        # A PID 1 without a SIGTERM handler ignores it: the stop would end in SIGKILL (137) after the 30 s.
        await pause.stop(t=WAIT_SECONDS)
        state = (await pause.show())["State"]
    assert (state["Running"], state["ExitCode"]) == (False, 0)


async def test_containers_in_a_sandbox_share_loopback(docker: aiodocker.Docker, images: Images,
                                                      no_leftovers: str) -> None:
    node = no_leftovers
    async with started_container(docker, _config(images.pause, node, NetworkMode=sandbox_network())) as sandbox:
        joined = f"container:{sandbox.id}"
        async with (
            started_container(docker, _config(images.tools, node, cmd=["nc", "-l", "-p", "8080"],
                                              NetworkMode=joined)) as listener,
            started_container(docker, _config(images.tools, node, cmd=["sh", "-c", CLIENT],
                                              NetworkMode=joined)) as client,
        ):
            client_code = await _exit_code(client)
            listener_code = await _exit_code(listener)

            async def logged() -> str:
                # The engine copies a container's output to its log asynchronously: it may trail the exit.
                return "".join(await listener.log(stdout=True))
            received = await eventually(logged, timeout_seconds=10, what="the listener's log")
    assert (client_code, listener_code, received) == (0, 0, "hello-over-loopback\n")


async def test_bind_mounted_directory_is_shared(docker: aiodocker.Docker, images: Images, no_leftovers: str,
                                                tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    binds = [f"{shared}:/home/jenkins/agent"]
    writer = _config(images.tools, no_leftovers, cmd=["sh", "-c", "echo from-writer > /home/jenkins/agent/note"],
                     NetworkMode="none", Binds=binds)
    reader = _config(images.tools, no_leftovers, cmd=["cat", "/home/jenkins/agent/note"], NetworkMode="none",
                     Binds=binds)
    async with started_container(docker, writer) as first:
        assert await _exit_code(first) == 0
        async with started_container(docker, reader) as second:
            assert await _exit_code(second) == 0

            async def logged() -> str:
                return "".join(await second.log(stdout=True))
            read = await eventually(logged, timeout_seconds=10, what="the reader's log")
    assert (read, (shared / "note").read_text()) == ("from-writer\n", "from-writer\n")


async def test_started_container_is_removed_on_exit(docker: aiodocker.Docker, images: Images,
                                                    no_leftovers: str) -> None:
    async with started_container(docker, _config(images.pause, no_leftovers, NetworkMode="none")) as container:
        during = [summary["Id"] for summary in await leftovers(docker, no_leftovers)]
    assert (during, await leftovers(docker, no_leftovers)) == ([container.id], [])
