# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv and install what is needed first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch 2.13.0 lies on this machine's disk (pip finds it offline); elsewhere
# any torch>=2.1 works, e.g. `make test TORCH=torch`.
TORCH ?= torch==2.13.0

.PHONY: demo test install clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/mcrgraph connect synth-clip synth-clap --via text --overwrite
	$(BIN)/mcrgraph plan audio image
	$(BIN)/mcrgraph synthetic-eval
	$(BIN)/mcrgraph connect synth-clip synth-clap --via text --method ex-mcr --overwrite
	$(BIN)/mcrgraph synthetic-eval synth-clap-into-synth-clip
	$(BIN)/mcrgraph connect synth-clip synth-ulip --via image --method ex-mcr --overwrite
	$(BIN)/mcrgraph plan audio 3d
	$(BIN)/mcrgraph synthetic-eval --path audio 3d

test: $(VENV)/.installed
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV)
