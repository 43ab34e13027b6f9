"""The JSON report against its published schema (every report the integration tests write is
validated too, by the ``run_cli`` fixture)."""

from __future__ import annotations

import jsonschema
import pytest

from harness.report.json_report import SCHEMA_VERSION, report_dict, schema
from harness.runner import MatrixReport


def test_the_schema_is_valid_and_rejects_a_broken_report() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    empty = report_dict(MatrixReport(), 2)
    jsonschema.validate(empty, schema())
    assert empty["schema_version"] == empty["schema"] == SCHEMA_VERSION == 3
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**empty, "runs": [{"scenario": "x"}]}, schema())
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**empty, "schema_version": 1}, schema())
