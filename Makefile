# Two commands on a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv and install what is needed first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# open_clip (the clip plugin) needs torchvision. torch 2.14.1 + torchvision 0.29.1 lie on this
# machine's disk (a CUDA build that runs on the CPU, ~5.5 GB; pip finds them offline); PyPI's
# torchvision does not import beside the CPU wheel torch 2.13.0. Elsewhere any matching pair
# works, e.g. `make test TORCH="torch torchvision"`.
TORCH ?= torch==2.14.1 torchvision==0.29.1
# The plugins: each its own distribution with an entry point in the mcrgraph group (clip, clap,
# ulip: real encoders; mini: the embedded default spaces and their data, not Apache-2.0 alone).
PLUGINS := plugins/mcrgraph-clip plugins/mcrgraph-clap plugins/mcrgraph-ulip plugins/mcrgraph-mini
# what pip installs of them: the clap plugin with its `laion` extra, so the tests can compare its
# two backends (laion_clap's code and transformers' ClapModel)
PLUGIN_REQS := plugins/mcrgraph-clip "plugins/mcrgraph-clap[laion]" plugins/mcrgraph-ulip plugins/mcrgraph-mini
# laion_clap pins numpy<2, and pyarrow 23+ (for Ray Data) needs numpy 2; an install without the
# clap plugin's `laion` extra needs no pin
PINS := "pyarrow<23"

# Debian packages the mini-world builder reads (its test builds a tiny world from them), and
# chromium, the browser the search page's test drives through Playwright (tests/test_serve_page.py).
DEBS := espeak-ng festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts \
	asterisk-core-sounds-en-wav sound-theme-freedesktop fonts-noto-color-emoji fonts-dejavu-core fonts-dejavu-extra \
	chromium

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test install system-deps clean

$(VENV)/.installed: pyproject.toml Makefile $(addsuffix /pyproject.toml,$(PLUGINS))
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check $(TORCH)
	$(BIN)/pip install --quiet --disable-pip-version-check -e ".[test]" $(addprefix -e ,$(PLUGIN_REQS)) $(PINS)
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/mcrgraph connect mini-clip mini-clap --via text --overwrite
	$(BIN)/mcrgraph plan audio image

# The suite runs twice: with the default threads, then on one (OMP_NUM_THREADS=1), where float32
# sums are taken in another order; tolerances come from the arithmetic and must hold for both
# (~550 s a run here, well inside CI's 90 minutes).
test: $(VENV)/.installed system-deps
	$(BIN)/python -m pytest --durations=15
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q

system-deps:
	@missing=$$(for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  $(SUDO) apt-get install -y -q $$missing >/dev/null || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q $$missing >/dev/null; }; \
	fi

clean:
	rm -rf $(VENV)
