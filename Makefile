# The two commands of a fresh machine: `make run` (the whole system) and `make test` (the tests).
# Everything they need is installed by them: the venv here, the services by `clipstream stack up`
# (cached under ~/.cache/clipstream, data under ~/.local/state/clipstream).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The repo root is the clipstream package: never let it (and its http/) onto sys.path.
export PYTHONSAFEPATH := 1

.PHONY: install run test unit stack-up stack-down demo bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

stack-up: install
	$(BIN)/clipstream stack up

stack-down: install
	$(BIN)/clipstream stack down

run: stack-up
	$(BIN)/clipstream migrate
	$(BIN)/clipstream run

test: stack-up
	$(BIN)/pytest

unit: install
	$(BIN)/pytest tests/unit tests/media -q

demo: install
	$(BIN)/clipstream demo

bench: stack-up
	$(BIN)/clipstream bench

clean:
	rm -rf $(VENV) build *.egg-info
