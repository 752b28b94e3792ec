# make demo: the payment SOP's examples against the local Stripe sandbox, then the release
# runbook performed by a scripted agent; about a screenful each.
# make test: lint, types and the whole test suite (starts its own sandbox), with the short
# version of the standing proof (tests/reliability).
# make soak: the standing proof at full scale (SOP_SOAK=1); figures in .sop/reliability-soak.json.
# make bench: every bench/bench_*.py, then one table of ratios against their peers
# (bench/report.py); peers that are not project dependencies (dbos) live in .venv-bench.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: demo test soak lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

# make demo DETAILS=1: also the seed's lint report, its Mermaid graph, its parameter schema
# and every run's whole action report.
demo: $(STAMP)
ifdef DETAILS
	$(VENV)/bin/sop lint sops/payment-processing.sop.md || true
	$(VENV)/bin/sop graph payment-processing --format mermaid
	$(VENV)/bin/sop schema payment-processing
	$(PY) -m handlers.payments.demo --details
else
	$(PY) -m handlers.payments.demo
endif
	$(PY) -m handlers.release.demo

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

# sop ui's browser tests drive Debian's chromium through Playwright (never a browser download);
# SVG/PNG graphs (sop graph --format svg, sop ui) render through Graphviz's dot. Installed
# when missing (through sudo when not root).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

/usr/bin/chromium:
	$(APT) update -q && $(APT) install -y -q chromium

/usr/bin/dot:
	$(APT) update -q && $(APT) install -y -q graphviz

# The PostgreSQL journal's tests start a throwaway cluster (tests/support/postgres.py)
# from Debian's postgresql; its initdb lives under the server's major version.
PG_INITDB := $(or $(firstword $(wildcard /usr/lib/postgresql/*/bin/initdb)),/usr/lib/postgresql/initdb)

$(PG_INITDB):
	$(APT) update -q && $(APT) install -y -q postgresql

# The workers' tests (tests/distributed) start a throwaway redis-server (tests/support/redis.py).
/usr/bin/redis-server:
	$(APT) update -q && $(APT) install -y -q redis-server

# compileall: the tests start `sop` as a subprocess hundreds of times; with
# PYTHONDONTWRITEBYTECODE set (as on this machine) each would compile the engine again.
test: $(STAMP) $(MERMAID) /usr/bin/chromium /usr/bin/dot $(PG_INITDB) /usr/bin/redis-server lint
	$(PY) -m compileall -q engine handlers
	$(PY) -m pytest -q

soak: $(STAMP)
	mkdir -p .sop
	SOP_SOAK=1 SOP_RELIABILITY_FIGURES=.sop/reliability-soak.json \
		$(PY) -m pytest -q tests/reliability

# DBOS Transact for bench/bench_dbos.py: its own virtualenv, never a project dependency.
$(BENCH_STAMP):
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q 'dbos>=3,<4'
	touch $(BENCH_STAMP)

bench: $(STAMP) $(BENCH_STAMP) /usr/bin/redis-server
	SOP_BENCH_PYTHON=$(BENCH_VENV)/bin/python $(PY) bench/report.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .sop build dist *.egg-info tests/mermaid/node_modules
