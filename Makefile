# make demo: the payment SOP's examples against the local Stripe sandbox.
# make test: lint, types and the whole test suite (starts its own sandbox), with the short
# version of the standing proof (tests/reliability).
# make soak: the standing proof at full scale (SOP_SOAK=1); figures in .sop/reliability-soak.json.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test soak lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sop lint sops/payment-processing.sop.md || true
	$(VENV)/bin/sop graph payment-processing --format mermaid
	$(VENV)/bin/sop schema payment-processing
	$(PY) -m handlers.payments.demo

lint: $(STAMP)
	$(PY) -m ruff check engine handlers tests bench
	$(PY) -m ruff format --check engine handlers tests bench
	$(PY) -m mypy

# mermaid's own parser (Node.js) checks that `sop graph` output renders on GitHub.
MERMAID := tests/mermaid/node_modules/.installed

$(MERMAID): tests/mermaid/package-lock.json
	if command -v npm >/dev/null; then \
		npm ci --prefix tests/mermaid --silent --no-audit --no-fund && touch $(MERMAID); \
	else echo "npm not found: the Mermaid render check will be skipped"; fi

test: $(STAMP) $(MERMAID) lint
	$(PY) -m pytest -q

soak: $(STAMP)
	mkdir -p .sop
	SOP_SOAK=1 SOP_RELIABILITY_FIGURES=.sop/reliability-soak.json \
		$(PY) -m pytest -q tests/reliability

bench: $(STAMP)
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .sop build dist *.egg-info tests/mermaid/node_modules
