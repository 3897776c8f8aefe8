"""report.json is a public contract: the committed JSON Schema equals the model's."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mlgate.data.report import DataReport
from mlgate.model.promote import PromoteReport
from mlgate.model.report import ModelReport

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = {"data-stats-report.schema.json": DataReport, "model-gate-report.schema.json": ModelReport,
           "promote-report.schema.json": PromoteReport}


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_committed_schema__equals_the_report_model(name: str) -> None:
    schema = SCHEMAS[name].model_json_schema()
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": name, **schema}
    path = ROOT / "schemas" / name
    if os.environ.get("MLGATE_UPDATE_SCHEMAS") == "1":
        path.write_text(json.dumps(schema, indent=2) + "\n")
    assert json.loads(path.read_text()) == schema, "run MLGATE_UPDATE_SCHEMAS=1 pytest tests/unit/test_report_schema.py"


def test_schema__requires_the_documented_contract_fields() -> None:
    schema = json.loads((ROOT / "schemas" / "data-stats-report.schema.json").read_text())
    assert {"passed", "splits", "leakage", "changes", "gates"} <= set(schema["required"])
    split = schema["$defs"]["SplitStats"]
    assert {"count", "shape", "label_counts"} <= set(split["required"])
    assert "train_test_exact_duplicates" in schema["$defs"]["LeakageStats"]["required"]
    assert {"name", "value", "threshold", "passed"} <= set(schema["$defs"]["Gate"]["required"])


def test_model_schema__requires_the_documented_contract_fields() -> None:
    schema = json.loads((ROOT / "schemas" / "model-gate-report.schema.json").read_text())
    assert {"passed", "model", "predictions", "total_seconds", "latency_ms", "size_mb", "params", "accuracy",
            "gates", "baseline"} <= set(schema["required"])
    assert {"p50", "p90", "p99", "mean"} <= set(schema["$defs"]["LatencyMs"]["required"])
