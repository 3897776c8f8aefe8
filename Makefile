# Two commands on a fresh machine (Python 3.11):
#   make demo   # data-stats on the bundled example dataset -> mlgate-report/report.md
#   make test   # lint, type-check and the whole test suite (incl. the container, where Docker runs)
VENV ?= .venv
PY := $(VENV)/bin/python
# Where torch and torchvision come from. Empty: the default index (PyPI's CUDA build on Linux, several
# GB). On a laptop or CI runner without a GPU: make test TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
TORCH_INDEX_URL ?=

.PHONY: demo test lint bench bench-container

$(VENV)/.installed: requirements.txt requirements-dev.txt
	python3 -m venv $(VENV)
ifneq ($(TORCH_INDEX_URL),)
	$(PY) -m pip install -q --index-url $(TORCH_INDEX_URL) $$(grep -E '^(torch|torchvision)==' requirements.txt)
endif
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) -m mlgate data-stats --data examples/data --out mlgate-report --baseline-data examples/data-v1
	@echo "figures and report.json: mlgate-report/"

lint: $(VENV)/.installed
	$(PY) -m ruff check mlgate tests bench entrypoint.py .github/scripts examples
	$(PY) -m mypy mlgate
	bash .ci/static-checks.sh

test: lint
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/data_stats.py
	$(PY) bench/near_duplicates.py
	$(PY) bench/model_benchmark.py
	$(PY) bench/model_gate.py
	$(PY) bench/label_errors.py
	$(PY) bench/data_scale.py
	$(PY) bench/incremental.py
	$(PY) bench/stream.py
	$(PY) bench/approval_race.py --rounds 5
	$(PY) bench/ray_engine.py

# needs a Docker engine (builds the image with .ci/docker-build.sh): image size per package, start-up time
bench-container: $(VENV)/.installed
	$(PY) bench/container.py
