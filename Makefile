# Developer shortcuts. The README's two Quickstart commands need nothing but Python 3.11+.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: venv run test lint format bench constraints

venv:
	python3 -m venv $(VENV) && $(VENV)/bin/pip install -q -c constraints.txt -e '.[test]'

run: venv
	$(VENV)/bin/bastion serve

test: venv
	$(VENV)/bin/pytest

lint:
	$(VENV)/bin/ruff format --check src tests bench training
	$(VENV)/bin/ruff check src tests bench training
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format:
	$(VENV)/bin/ruff format src tests bench training
	$(VENV)/bin/ruff check --fix src tests bench training

bench:
	$(PY) bench/run_all.py

# Refresh the pinned constraints from the current virtualenv (after changing dependencies).
constraints:
	{ echo '# Pinned versions for reproducible installs (pip install -c constraints.txt …); refresh with `make constraints`.'; $(VENV)/bin/pip freeze --exclude-editable | grep -v '^bastion-ai'; } > constraints.txt
