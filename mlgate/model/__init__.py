"""``mode: model-gate`` and ``mode: promote``: loading, measuring, gating, lineage, the model report and promotion."""
