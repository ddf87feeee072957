"""The cost section of vnode's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from vnode.config import load_settings
from vnode.errors import ConfigError


def test_cost_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VNODE_COST__DB_PATH", "/var/lib/vnode/cost.sqlite3")
    monkeypatch.setenv("VNODE_COST__RETENTION_DAYS", "30")
    cost = load_settings().cost
    assert (cost.db_path, cost.retention_days, cost.prices.currency) == (Path("/var/lib/vnode/cost.sqlite3"), 30,
                                                                         "CNY")


def test_a_retention_of_zero_days_is_refused() -> None:
    with pytest.raises(ConfigError, match="cost.retention_days"):
        load_settings(overrides={"cost": {"retention_days": 0}})
