# Two commands on a fresh machine: `make run` (install + start the app), `make test` (install + whole suite).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: run test install lint bench train package package-check clean

$(STAMP): pyproject.toml scripts/system-deps.sh
	sh scripts/system-deps.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	# torch is pinned to the local CPU build first, so nothing later pulls a newer one
	$(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev,train,package]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/workstation

test: $(STAMP)
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

# The ward app: dist/workstation/workstation (one folder) and, on Linux, dist/workstation-*.tar.gz.
package: $(STAMP)
	PYTHON=$(BIN)/python sh packaging/build.sh

# The built app's self-test with networking cut off, its size and its cold start.
package-check:
	sh packaging/check_built_app.sh

bench: $(STAMP)
	$(BIN)/workstation bench

clean:
	rm -rf $(VENV) build dist *.egg-info
