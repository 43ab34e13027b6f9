"""The JSON report against its published schema (every report the integration tests write is
validated too, by the ``run_cli`` fixture)."""

from __future__ import annotations

from typing import get_args

import jsonschema
import pytest

from harness.report.json_report import SCHEMA_VERSION, report_dict, schema
from harness.runner import MatrixReport
from harness.verdict import Basis


def test_the_schema_is_valid_and_rejects_a_broken_report() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    empty = report_dict(MatrixReport(), 2)
    jsonschema.validate(empty, schema())
    assert empty["schema_version"] == empty["schema"] == SCHEMA_VERSION == 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**empty, "runs": [{"scenario": "x"}]}, schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**empty, "schema_version": 1}, schema())


def test_the_schema_names_every_basis_the_judge_gives() -> None:
    run_schema = schema()["$defs"]["run"]["properties"]
    assert tuple(run_schema["basis"]["enum"]) == get_args(Basis)
