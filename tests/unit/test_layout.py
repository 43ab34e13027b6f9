"""The house by stage: data flows one way through the folders of ``harness/`` (no module imports a
later stage), and no room is too big to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

HARNESS = Path(__file__).resolve().parents[2] / "harness"
# The pipeline, in the order data flows; a module may import its own stage and earlier ones.
ORDER = [
    "host",  # processes, temporary dirs and the reaper, ports, file limits, CPUs
    "http",  # a request as sent, its record, the clock of record times
    "fleet",  # the app behind the probe, served by real workers
    "redis",  # the Redis the throttle counts in: providers, fault proxy, state
    "traffic",  # engines that send requests: bursts, one at a time, sustained
    "verdict",  # pure judgement: window models, evidence, the judge
    "faults",  # what breaks during a run
    "scenario_rules",  # how each scenario value is checked
    "scenario",  # what a run must prove, validated from files and flags
    "campaign",  # a run's bursts or sustained traffic, driven by the judge
    "runner",  # the matrix of runs: Redis, fleet, campaign, verdict per shape
    "gate",  # the release gate: two shapes, their verdicts and their cost under load
    "report",  # console, JSON, Markdown, JUnit, HTML
    "cli_args",  # the command line's flags
    "cli",  # the command line
    "pytest_plugin",  # the same from a test suite
]
SHARED = {"errors", "redaction", "__init__"}  # anyone may import these; they import no stage
OUTSIDE = {"demo", "throttles", "__main__", "lua"}  # what users install or run, not a stage
MAX_LINES = 420
MAX_FUNCTION_LINES = 85


def stage_of(module: str) -> str:
    """``harness.verdict.judge`` -> ``verdict``; ``harness.cli`` -> ``cli``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(HARNESS.rglob("*.py")):
        dotted = ".".join(("harness", *path.relative_to(HARNESS).with_suffix("").parts))
        found.append((dotted.removesuffix(".__init__"), path))
    return found


def imports(path: Path) -> set[str]:
    """The harness modules ``path`` imports (``from harness import x`` counts as ``harness.x``)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harness"):
            if node.module == "harness":
                out |= {f"harness.{a.name}" for a in node.names if a.name != "__version__"}
            else:
                out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("harness")}
    return out


def test_every_module_belongs_to_a_stage() -> None:
    known = set(ORDER) | SHARED | OUTSIDE
    assert {stage_of(m) for m, _ in modules()} <= known


def test_data_flows_one_way() -> None:
    backwards = []
    for module, path in modules():
        stage = stage_of(module)
        if stage in SHARED | OUTSIDE:
            continue
        for imported in imports(path):
            other = stage_of(imported)
            if other in ORDER and ORDER.index(other) > ORDER.index(stage):
                backwards.append(f"{module} imports {imported}")
    shared_imports = [
        f"{module} imports {imported}"
        for module, path in modules()
        if stage_of(module) in SHARED
        for imported in imports(path)
        if stage_of(imported) not in SHARED
    ]
    assert backwards == [] and shared_imports == []


@pytest.mark.parametrize(("module", "path"), modules(), ids=lambda v: str(v))
def test_no_room_too_big_to_read(module: str, path: Path) -> None:
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{module}: {len(text.splitlines())} lines"
    long = [
        f"{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long == [], f"{module}: {long}"
