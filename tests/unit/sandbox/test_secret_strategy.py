"""Secrets: stringData is merged into data on create and update, as kube-apiserver does, and never stored."""

from __future__ import annotations

import base64

from vnode.sandbox.strategy import SecretStrategy


def encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_string_data_is_merged_into_data_and_dropped() -> None:
    secret = {"metadata": {"name": "s"}, "data": {"a": encoded("old"), "b": encoded("kept")},
              "stringData": {"a": "new", "c": "plain"}}
    SecretStrategy().prepare_for_create(secret)
    assert secret == {"metadata": {"name": "s"}, "type": "Opaque",
                      "data": {"a": encoded("new"), "b": encoded("kept"), "c": encoded("plain")}}


def test_update_merges_too_and_keeps_the_type() -> None:
    secret = {"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth", "stringData": {"password": "p"}}
    SecretStrategy().prepare_for_update(secret, {"metadata": {"name": "s"}})
    assert secret == {"metadata": {"name": "s"}, "type": "kubernetes.io/basic-auth",
                      "data": {"password": encoded("p")}}


def test_a_secret_without_a_type_is_opaque() -> None:
    secret = {"metadata": {"name": "s"}, "data": {"a": encoded("x")}}
    SecretStrategy().prepare_for_create(secret)
    assert secret["type"] == "Opaque"
