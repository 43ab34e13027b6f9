"""The JSON report: a stable summary CI scripts can read (top-level ``runs`` list)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.runner import MatrixReport, RunResult

SCHEMA_VERSION = 1


def report_dict(report: MatrixReport, exit_code: int) -> dict[str, Any]:
    redis = report.redis
    versions = dict(report.versions)
    versions["redis-server"] = redis.version if redis else "not started"
    return {
        "schema": SCHEMA_VERSION,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "error": report.error.message if report.error else None,
        "redis": (
            {"provider": redis.provider, "owned": redis.owned, "version": redis.version,
             "reason": redis.reason}
            if redis else None
        ),
        "versions": versions,
        "runs": [_run_dict(r) for r in report.runs],
    }


def _run_dict(r: RunResult) -> dict[str, Any]:
    v, t = r.verdict, r.verdict.tally
    return {
        "scenario": r.scenario,
        "workers": r.workers,
        "threads": r.threads,
        "rate": r.rate,
        "limit": r.limit,
        "requests": r.requests,
        "identity": r.identity,
        "sent": t.sent,
        "accepted": t.accepted,
        "rejected": t.rejected,
        "errors": t.errors,
        "expected_accepted": v.expected_accepted,
        "workers_seen": t.workers_seen,
        "served_by": t.served_by,
        "accepted_by": t.accepted_by,
        "verdict": v.kind,
        "expect": r.expect,
        "as_expected": r.as_expected,
        "factor": round(v.factor, 3) if v.factor is not None else None,
        "reason": v.reason,
        "hint": v.hint,
        "burst_span_s": round(t.span_s, 4),
        "ready_s": round(r.ready_s, 3),
        "traffic_s": round(r.traffic_s, 3),
    }


def write_json(report: MatrixReport, exit_code: int, path: Path) -> None:
    path.write_text(json.dumps(report_dict(report, exit_code), indent=2) + "\n")
