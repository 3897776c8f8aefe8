"""Measuring a loaded model: small pure modules, one job each, and torch-free value types.

- :mod:`.values` — what a measurement returns (pydantic models, no torch) and which way each metric
  is better (:class:`~.values.Direction`, declared on the field); the gates and the report import
  only this.
- :mod:`.latency` — warm-up, one timed call per prediction, percentiles, interleaved A/B timing and
  throughput (no torch either).
- :mod:`.memory` — peak bytes of weights and live tensors during one forward pass.
- :mod:`.flops` — FLOPs of one prediction.
- :mod:`.accuracy` — accuracy, per-class accuracy and the confusion matrix.
- :mod:`.robustness` — accuracy under Gaussian noise and under an FGSM attack.
- :mod:`.inputs` — what the model is fed: eval images preprocessed, the per-sample input shape.
- :mod:`.environment` — the machine and versions a measurement was taken on.
- :mod:`.run` — :func:`~.run.measure_model`: all of the above for a candidate (and production,
  interleaved), with a keyword-only :class:`~.run.MeasureOptions`.

This package's ``__init__`` imports nothing, so importing :mod:`.values` never loads torch.
"""
