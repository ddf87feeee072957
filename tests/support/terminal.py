"""`kubectl exec -it` from a real terminal of a known size (util-linux `script` gives kubectl a pty)."""

from __future__ import annotations

import asyncio
import os
import shlex

from tests.support.kubelet_world import WAIT, KubeletWorld


async def check_exec_it_terminal_size(world: KubeletWorld, pod: str) -> None:
    """The remote shell sees the client's 91x27 terminal, and its exit code comes back as kubectl's."""
    kubectl = world.kubectl()
    command = f"{shlex.quote(kubectl.binary)} --kubeconfig={kubectl.kubeconfig} exec -it {pod} -- sh"
    inner = f"stty cols 91 rows 27; {command}"
    process = await asyncio.create_subprocess_exec(
        "script", "-qfec", inner, "/dev/null", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "HOME": str(world.tmp)})
    # Typed at the remote shell: it reads them once vnode has applied the client's terminal size.
    out, err = await asyncio.wait_for(process.communicate(b"stty size; exit 4\n"), WAIT)
    assert "27 91" in out.decode(errors="replace"), (out, err)
    assert process.returncode == 4
