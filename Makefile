# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test check-corpus bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m compileall -q pydist luaapi > /dev/null   # bytecode once: start-up is half compile otherwise
	touch $(STAMP)

## run: serve conf.d/default.conf, a caching forwarder on 127.0.0.1:5300 (UDP and TCP)
run: $(STAMP)
	$(VENV)/bin/pydist --supervised --disable-syslog -C conf.d/default.conf

## test: install the test dependencies and run the whole suite
test: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests

## check-corpus: dnsdist's --check-config verdicts over the shared corpus
check-corpus: $(STAMP)
	../shared/corpus/check-all.sh $(CURDIR)/$(VENV)/bin/pydist

bench: $(STAMP)
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH tools/bench

clean:
	rm -rf $(VENV) build *.egg-info
