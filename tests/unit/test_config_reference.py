"""The README's configuration reference is the one `vnode.config_reference` generates from the settings models."""

from __future__ import annotations

from pathlib import Path

from vnode.config_reference import BEGIN, END, reference_markdown

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_current() -> None:
    text = README.read_text()
    block = text[text.index(BEGIN):text.index(END) + len(END) + 1]
    assert block == reference_markdown(), "stale: run `python -m vnode.config_reference --write README.md`"


def test_every_option_has_a_row_with_its_environment_variable() -> None:
    reference = reference_markdown()
    for row in ("| `provider.status_poll_seconds` | `VNODE_PROVIDER__STATUS_POLL_SECONDS` |",
                "| `kubelet.port` | `VNODE_KUBELET__PORT` | `10250` |",
                "| `eci_emulator.docker.network` | `VNODE_ECI_EMULATOR__DOCKER__NETWORK` |"):
        assert row in reference
