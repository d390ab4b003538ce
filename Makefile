# vidrec: two commands do everything on a fresh machine.
#   make demo   - the end-to-end default job (creates .venv on first use)
#   make test   - the test suite (creates .venv on first use)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.vidrec-installed

.PHONY: demo test complexity bench lock venv clean

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(PY) -m pytest -q

complexity: $(STAMP)
	$(PY) tools/complexity.py --models resnet3d_50 iresnet3d_50 resstage3d_50 preact_resnet3d_50

venv: $(STAMP)

# The venv is (re)built when pyproject.toml or constraints.txt change. torch and
# torchvision are pinned with '===' in constraints.txt (see README, "Install").
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -c constraints.txt -e ".[test]"
	$(PY) -c "import torch, torchvision, decord, av, fvcore; print('vidrec env ready: torch', torch.__version__, 'torchvision', torchvision.__version__)"
	touch $(STAMP)

# Re-pin the tested set after changing dependencies.
lock: $(STAMP)
	{ sed -n '1,4p' constraints.txt; $(PY) -m pip freeze --exclude-editable | \
	  sed -e 's/^torch==/torch===/' -e 's/^torchvision==/torchvision===/'; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) output demo_output .pytest_cache
