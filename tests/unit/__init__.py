"""Unit tests: pure functions and models, files under ``tmp_path``; no network, no docker, no ``dvc`` subprocess."""
