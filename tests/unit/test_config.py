"""Settings precedence and validation, and the CLI's plain commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnode import __version__
from vnode.cli import main
from vnode.config import load_settings
from vnode.errors import ConfigError


def test_defaults_apply_without_any_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no file, env or flags, the documented defaults hold."""
    monkeypatch.delenv("VNODE_SANDBOX__API_PORT", raising=False)
    settings = load_settings()
    assert settings.sandbox.api_port == 6443
    assert settings.provider.kind == "mock"


def test_file_then_env_then_flags_take_precedence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flag beats the environment, which beats the YAML file, which beats the default."""
    config = tmp_path / "vnode.yaml"
    config.write_text("sandbox:\n  api_port: 7001\n  api_host: 0.0.0.0\nnode:\n  name: from-file\n")
    monkeypatch.setenv("VNODE_SANDBOX__API_PORT", "7002")
    monkeypatch.setenv("VNODE_NODE__NAME", "from-env")
    settings = load_settings(config, {"node": {"name": "from-flag"}})
    assert settings.sandbox.api_host == "0.0.0.0"  # file only
    assert settings.sandbox.api_port == 7002  # env over file
    assert settings.node.name == "from-flag"  # flag over env


def test_a_bad_value_names_the_option(monkeypatch: pytest.MonkeyPatch) -> None:
    """An out-of-range value is rejected with the option's dotted name."""
    with pytest.raises(ConfigError, match=r"sandbox\.api_port"):
        load_settings(overrides={"sandbox": {"api_port": 70000}})


def test_an_unknown_option_in_the_file_is_rejected(tmp_path: Path) -> None:
    """Typos in the config file are errors, not silently ignored."""
    config = tmp_path / "vnode.yaml"
    config.write_text("sandbox:\n  api_prot: 7001\n")
    with pytest.raises(ConfigError, match=r"sandbox\.api_prot"):
        load_settings(config)


def test_a_missing_config_file_is_reported(tmp_path: Path) -> None:
    """Pointing --config at nothing fails at start."""
    with pytest.raises(ConfigError, match="--config"):
        load_settings(tmp_path / "absent.yaml")


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`vnode version` names vnode's version and the Kubernetes version it follows."""
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert __version__ in out and "Kubernetes v1." in out


def test_help_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    """`vnode --help` lists the subcommands."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "sandbox" in out and "version" in out


def test_cli_rejects_a_bad_flag_value_with_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A bad flag value exits 2 with a message naming the option, before anything starts."""
    assert main(["sandbox", "--api-port", "99999"]) == 2
    assert "sandbox.api_port" in capsys.readouterr().err


def test_kubelet_flags_of_vnode_run(tmp_path: Path) -> None:
    from vnode.cli import _overrides, _parser

    args = _parser().parse_args(["run", "--kubelet-port", "11250", "--tls-cert-file", str(tmp_path / "c.pem"),
                                 "--tls-private-key-file", str(tmp_path / "k.pem"),
                                 "--client-ca-file", str(tmp_path / "ca.pem")])
    kubelet = load_settings(None, _overrides(args)).kubelet
    assert (kubelet.port, kubelet.tls_cert_file, kubelet.tls_key_file, kubelet.client_ca_file) == (
        11250, tmp_path / "c.pem", tmp_path / "k.pem", tmp_path / "ca.pem")
