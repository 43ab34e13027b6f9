"""The JSON report: a stable summary CI scripts can read (top-level ``runs`` list)."""

from __future__ import annotations

import contextlib
import json
import os
from importlib.resources import files
from pathlib import Path
from typing import Any

from harness.redaction import client_name, scrub
from harness.redis.providers import redact_url
from harness.redis.state import RedisState
from harness.runner import MatrixReport, RunResult
from harness.verdict import BurstFinding
from harness.verdict.evidence import Overlap

SCHEMA_VERSION = 3  # harness/report/report.schema.json describes it
SCHEMA_FILE = "report/report.schema.json"  # a resource of the harness package


def report_dict(report: MatrixReport, exit_code: int) -> dict[str, Any]:
    redis = report.redis
    versions = dict(report.versions)
    versions["redis-server"] = redis.version if redis else "not started"
    return {
        "schema": SCHEMA_VERSION,  # the same, for readers of version 1
        "schema_version": SCHEMA_VERSION,
        "ok": exit_code == 0,
        "exit_code": exit_code,
        "error": report.error.message if report.error else None,
        "redis": (
            {
                "provider": redis.provider,
                "url": redact_url(redis.url),
                "owned": redis.owned,
                "version": redis.version,
                "reason": redis.reason,
            }
            if redis
            else None
        ),
        "versions": versions,
        "notes": report.notes,
        "runs": [_run_dict(r) for r in report.runs],
    }


def _run_dict(r: RunResult) -> dict[str, Any]:
    v, t = r.verdict, r.verdict.tally
    return {
        "scenario": r.scenario,
        "workers": r.workers,
        "threads": r.threads,
        "instances": r.instances,
        "shape": r.shape,
        "rate": r.rate,
        "limit": r.limit,
        "requests": r.requests,
        "window": r.window,
        "scope": r.scope,
        "worker_class": r.worker_class,
        "image": {"name": r.image.name, "digest": r.image.digest} if r.image else None,
        "request": {  # header values stay out: they may hold tokens
            "method": r.request.method,
            "path": r.request.path,
            "header_names": [name for name, _ in r.request.headers],
            "body": bool(r.request.body),
        },
        "statuses": {
            "accept": sorted(r.statuses.accept) if r.statuses.accept else "2xx",
            "reject": sorted(r.statuses.reject),
        },
        "identity": r.identity,
        "identities": list(r.identities),
        "sent": t.sent,
        "accepted": t.accepted,
        "rejected": t.rejected,
        "errors": t.errors,
        "retried": t.retried,
        "indeterminate": t.indeterminate,
        "expected_accepted": v.expected_accepted,
        "workers_seen": t.workers_seen,
        "served_by": t.served_by,
        "accepted_by": t.accepted_by,
        "per_instance": t.per_instance(),
        "faults": [f.as_dict() for f in r.faults],
        "fault": r.faults[0].as_dict() if r.faults else None,
        "verdict": v.kind,
        "basis": v.basis,
        "expect": r.expect,
        "as_expected": r.as_expected,
        "factor": round(v.factor, 3) if v.factor is not None else None,
        "reason": v.reason,
        "hint": v.hint,
        "edge_chance": v.edge_chance,
        "overlap": _overlap_dict(v.overlap),
        "bursts": [_burst_dict(b) for b in v.bursts],
        "redis_state": _redis_state_dict(r.redis_state) if r.redis_state else None,
        "burst_span_s": round(t.span_s, 4),
        "ready_s": round(r.ready_s, 3),
        "traffic_s": round(r.traffic_s, 3),
    }


def _redis_state_dict(state: RedisState) -> dict[str, Any]:
    return {
        "pattern": state.pattern,
        "keys": state.keys,
        "truncated": state.truncated,
        "types": state.types,
        "no_ttl": list(state.no_ttl),
        "no_ttl_count": state.no_ttl_count,
        "ttl_far": list(state.ttl_far),
        "ttl_far_count": state.ttl_far_count,
        "ttl_range_s": list(state.ttl_range_s) if state.ttl_range_s else None,
        "sample": [
            {"key": k.key, "type": k.type, "size": k.size, "ttl_s": k.ttl_s} for k in state.sample
        ],
        "used_memory": state.used_memory,
        "error": state.error or None,
    }


def _overlap_dict(o: Overlap) -> dict[str, Any]:
    return {
        "peak": o.peak,
        "peak_workers": o.peak_workers,
        "at_crossing": o.at_crossing,
        "crossing_workers": o.crossing_workers,
        "at_start": o.at_start,
        "start_workers": o.start_workers,
    }


def _burst_dict(b: BurstFinding) -> dict[str, Any]:
    t, fit = b.tally, b.fit
    return {
        "identity": b.identity,  # the client's address
        "client": client_name(b.value),  # never the value: it may be a token
        "sent": t.sent,
        "accepted": t.accepted,
        "rejected": t.rejected,
        "errors": t.errors,
        "retried": t.retried,
        "indeterminate": t.indeterminate,
        "span_s": round(t.span_s, 4),
        "fit": {
            "kind": fit.kind,
            "model": fit.model,
            "bound": fit.bound,
            "loose_bound": fit.loose_bound,
            "edge_chance": fit.edge_chance,
            "reason": fit.reason,
        },
        "overlap": _overlap_dict(b.overlap),
        "confirmed_rejected": b.confirmed_rejected,
        "recovered": list(b.recovered) if b.recovered else None,
        "bypass": [{"header": h, "admitted": a, "sent": n} for h, a, n in b.bypassed],
        "per_period": list(b.per_period),
        "unjustified": b.unjustified,
    }


def json_escaped(text: str) -> str:
    """``text`` as it is written inside a JSON string."""
    return json.dumps(text)[1:-1]


def schema() -> dict[str, Any]:
    """The JSON Schema of the report (shipped in the package)."""
    return dict(json.loads(files("harness").joinpath(SCHEMA_FILE).read_text()))


def write_json(report: MatrixReport, exit_code: int, path: Path) -> None:
    """Write the report to ``path``; on an OSError, a file this call created is removed."""
    text = scrub(json.dumps(report_dict(report, exit_code), indent=2) + "\n", json_escaped)
    existed = os.path.lexists(path)
    try:
        path.write_text(text)
    except OSError:
        if not existed:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
