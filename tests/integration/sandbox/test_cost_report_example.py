"""examples/cost-report.md against a real run of examples/cost-report-demo.sh (sandbox + ECI emulator, sim runtime):
the document shows every command the script runs, in order, and each output it shows has the structure of what the
command printed this time: the same header lines, row keys, pod counts, estimate marks, CSV columns and JSON keys.
Amounts and times differ from run to run, so they are compared by form only."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.kubectl import kubectl_binary

pytestmark = pytest.mark.kubectl
ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "examples" / "cost-report.md"
SCRIPT = ROOT / "examples" / "cost-report-demo.sh"
TIMEOUT_SECONDS = 120.0
TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
DURATION = re.compile(r"\b\d+:\d\d:\d\d\b")
# An amount or a float sample: not a spec such as 2.0-4.0Gi.
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+(?:e[-+]?\d+)?|e[-+]?\d+)(?![\w.-])")
RULE = re.compile(r"-{2,}")
AMOUNT_FIELDS = frozenset({"billed_seconds", "cost"})
TIME_FIELDS = frozenset({"since", "until", "generated_at", "first_start", "last_end"})


@dataclass(frozen=True)
class Step:
    command: str
    output: str


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    return [(m[1], m[2]) for m in re.finditer(r"^```(\w*)\n(.*?)^```$", text, re.M | re.S)]


def doc_steps() -> list[Step]:
    """The document's console blocks: `$ COMMAND` on the first line, its output below."""
    steps = []
    for lang, body in fenced_blocks(DOC.read_text()):
        if lang == "console":
            first, _, output = body.partition("\n")
            assert first.startswith("$ "), f"a console block must start with `$ `: {body[:80]!r}"
            steps.append(Step(first[2:], output))
    return steps


def transcript_steps(text: str) -> list[Step]:
    steps: list[Step] = []
    for line in text.splitlines(keepends=True):
        if line.startswith("$ "):
            steps.append(Step(line[2:].rstrip("\n"), ""))
        else:
            assert steps, f"output before any command: {line!r}"
            steps[-1] = Step(steps[-1].command, steps[-1].output + line)
    return steps


@dataclass(frozen=True)
class DemoRun:
    work: Path
    steps: list[Step]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoRun]:
    """One run of the script, shared by this module's tests (it takes about 20 s)."""
    home = tmp_path_factory.mktemp("cost-demo")
    work = home / "work"
    kubectl_dir = str(Path(kubectl_binary()).parent)
    env = {k: v for k, v in os.environ.items() if not k.startswith("VNODE_") or k.startswith("VNODE_TEST_")}
    env.update(PATH=f"{kubectl_dir}:{os.environ['PATH']}", HOME=str(home))
    process = subprocess.Popen(["bash", str(SCRIPT), str(Path(sys.executable).parent / "vnode"), str(work)],
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:  # timed out: stop the script and the sandbox it started
            os.killpg(process.pid, signal.SIGTERM)
            process.communicate()
    assert process.returncode == 0, f"the demo failed:\n{out.decode()}\n{err.decode()}"
    yield DemoRun(work, transcript_steps(out.decode()))


def skeleton(text: str) -> list[str]:
    """Lines with times, durations and amounts replaced by placeholders and runs of spaces collapsed."""
    lines = []
    for line in text.splitlines():
        line = DURATION.sub("<duration>", TIME.sub("<time>", line))
        line = RULE.sub("--", NUMBER.sub("<n>", line))
        lines.append(" ".join(line.split()))
    return lines


def assert_same_text_shape(shown: str, printed: str) -> None:
    expected, actual = skeleton(shown), skeleton(printed)
    # The first line is the header; rows may come in another order (builds that start in the same second, jobs of
    # nearly equal cost, counters in the order their intervals closed).
    assert expected[:1] == actual[:1] and sorted(expected) == sorted(actual), f"shown:\n{shown}\nprinted:\n{printed}"


def assert_same_json_shape(shown: Any, printed: Any, where: str = "$", key: str = "") -> None:
    """Same keys in the same order and equal values, except amounts (positive numbers) and times (RFC 3339)."""
    if isinstance(shown, dict):
        assert isinstance(printed, dict) and list(shown) == list(printed), f"{where}: keys {shown} vs {printed}"
        for name in shown:
            assert_same_json_shape(shown[name], printed[name], f"{where}.{name}", name)
    elif isinstance(shown, list):
        assert isinstance(printed, list) and len(shown) == len(printed), f"{where}: {shown} vs {printed}"
        for index, (a, b) in enumerate(zip(shown, printed, strict=True)):
            assert_same_json_shape(a, b, f"{where}[{index}]", key)
    elif key in AMOUNT_FIELDS:
        assert isinstance(printed, Decimal | int) and printed > 0, f"{where}: {printed!r}"
    elif key in TIME_FIELDS and shown is not None:
        assert isinstance(printed, str) and TIME.fullmatch(printed), f"{where}: {printed!r}"
    else:
        assert shown == printed, f"{where}: shown {shown!r}, printed {printed!r}"


def assert_same_csv_shape(shown: str, printed: str) -> None:
    def rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
        reader = csv.DictReader(io.StringIO(text))
        return list(reader.fieldnames or []), sorted(reader, key=lambda r: r["key"])

    (shown_header, shown_rows), (header, printed_rows) = rows(shown), rows(printed)
    assert shown_header == header and len(shown_rows) == len(printed_rows), printed
    for expected, actual in zip(shown_rows, printed_rows, strict=True):
        for column in header:
            if column in AMOUNT_FIELDS:
                assert Decimal(actual[column]) > 0, actual
            elif column in TIME_FIELDS:
                assert TIME.fullmatch(actual[column]) or actual[column] == expected[column] == "", actual
            else:
                assert actual[column] == expected[column], f"{column}: shown {expected}, printed {actual}"


def test_the_doc_shows_every_command_the_script_runs_in_order(demo: DemoRun) -> None:
    assert [s.command for s in doc_steps()] == [s.command for s in demo.steps]


@pytest.mark.parametrize("index", range(len(doc_steps())), ids=[f"{i}: {s.command[:60]}"
                                                                 for i, s in enumerate(doc_steps())])
def test_each_output_has_the_structure_the_doc_shows(demo: DemoRun, index: int) -> None:
    shown = doc_steps()[index]
    printed = next(s for s in demo.steps if s.command == shown.command)
    if shown.output.startswith("{"):
        assert_same_json_shape(json.loads(shown.output, parse_float=Decimal),
                               json.loads(printed.output, parse_float=Decimal))
    elif "--format csv" in shown.command:
        assert_same_csv_shape(shown.output, printed.output)
    else:
        assert_same_text_shape(shown.output, printed.output)


def test_the_doc_pod_is_the_pod_the_script_creates(demo: DemoRun) -> None:
    shown = [yaml.safe_load(body) for lang, body in fenced_blocks(DOC.read_text()) if lang == "yaml"]
    pods = [d for d in yaml.safe_load_all((demo.work / "pods.yaml").read_text()) if d and d["kind"] == "Pod"]
    assert shown == pods[:1]


def test_the_doc_starts_the_sandbox_as_the_script_does() -> None:
    sandbox = next(body for lang, body in fenced_blocks(DOC.read_text()) if lang == "sh" and "vnode sandbox" in body)
    script = SCRIPT.read_text()
    for line in sandbox.splitlines():
        assert line.strip() in script, line


def test_the_html_report_is_one_page_with_both_jobs(demo: DemoRun) -> None:
    page = (demo.work / "cost.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "team/app #41" in page and "nightly-e2e" in page and "<svg" in page
