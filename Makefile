# make demo: the payment SOP's examples against the local Stripe sandbox.
# make test: lint, types and the whole test suite (starts its own sandbox).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sop lint sops/payment-processing.sop.md || true
	$(VENV)/bin/sop graph payment-processing --format mermaid
	$(VENV)/bin/sop schema payment-processing
	$(PY) -m handlers.demo

lint: $(STAMP)
	$(PY) -m ruff check engine handlers tests bench
	$(PY) -m ruff format --check engine handlers tests bench
	$(PY) -m mypy

test: $(STAMP) lint
	$(PY) -m pytest -q

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .sop build dist *.egg-info
