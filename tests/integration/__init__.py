"""Integration tests: one real external peer at a time on loopback (GitHub, ``dvc``, ``wandb``)."""
