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

# The shipped models' recipe (../shared/data beside the repo; about 2 h 55 min on 2 CPU cores when the shipped files
# were made, every stage running all its planned epochs; the --minutes budgets cap it near 4 h 10 min on a slower
# machine, whose runs then end early and differ): a run from random weights, a fine-tune with the pubic symphysis
# weighted double in the Dice loss, the uncertainty calibration on the training split, the head-biometry model (the
# fine-tuned weights trained on HC18 alone, named in the main manifest), the floors of analyze's checks before head
# biometry is shown, then the figures for the cards. Seed 1: the seed of the shipped psfh-multitask 1.2.0 / psfh-head 1.1.0.
# It writes into $(TRAINED) and leaves models/ alone: the shipped manifests also carry the measured figures and the
# cards are written by hand, which an export would replace. The last line compares the files with the shipped ones.
TRAINED := out/train
train: $(STAMP)
	$(BIN)/python -m workstation.training.train --data ../shared/data --no-export --runs runs --name psfh-multitask --epochs 55 --minutes 125 --seed 1
	$(BIN)/python -m workstation.training.train --data ../shared/data --out $(TRAINED) --runs runs/ft --name psfh-multitask --version 1.2.0 --epochs 40 --minutes 62 --seed 1 --lr 1e-3 --init runs/psfh-multitask/best.pt --ps-dice-weight 2
	$(BIN)/python -m workstation.training.calibrate_uncertainty --model $(TRAINED)/psfh-multitask.json --data ../shared/data
	$(BIN)/python -m workstation.training.train --data ../shared/data --out $(TRAINED) --runs runs --name psfh-head --version 1.1.0 --task head --init runs/ft/psfh-multitask/best.pt --lr 1e-3 --epochs 60 --minutes 60 --seed 1 --select last --attach-to psfh-multitask
	$(BIN)/python -m workstation.training.biometry_floors --data ../shared/data --model $(TRAINED)/psfh-multitask.json --write-manifest --json $(TRAINED)/biometry_floors.json
	$(BIN)/workstation evaluate --dataset psfhs ../shared/data/psfhs --model $(TRAINED)/psfh-multitask.json --json $(TRAINED)/evaluate_psfhs_val.json
	$(BIN)/workstation evaluate --dataset hc18 ../shared/data/hc18 --model $(TRAINED)/psfh-multitask.json --json $(TRAINED)/evaluate_hc18_val.json
	$(BIN)/workstation bench --model $(TRAINED)/psfh-multitask.json
	sha256sum models/psfh-multitask.onnx $(TRAINED)/psfh-multitask.onnx models/psfh-head.onnx $(TRAINED)/psfh-head.onnx

clean:
	rm -rf $(VENV) build dist *.egg-info
