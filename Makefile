# Enclave — the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
.DEFAULT_GOAL := run
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SSLYZE_VENV := .venv-sslyze
PIP_COMPILE := $(BIN)/pip-compile -q --generate-hashes --allow-unsafe --strip-extras \
	--no-emit-index-url --no-emit-find-links
ADVISORY_DB ?= ../shared/advisory-db
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: run test install install-dev browser-deps tls-deps node-deps lint scan lock bench clean-venv

# The runtime virtualenv: locked dependencies installed by hash only, then Enclave itself.
$(BIN)/.installed: requirements/base.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/base.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

$(BIN)/.installed-dev: $(BIN)/.installed requirements/dev.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/dev.txt
	touch $@

# sslyze pins an older cryptography, so it gets a virtualenv of its own.
$(SSLYZE_VENV)/.installed: requirements/sslyze.txt
	test -x $(SSLYZE_VENV)/bin/python || $(PYTHON) -m venv $(SSLYZE_VENV)
	$(SSLYZE_VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/sslyze.txt
	touch $@

install: $(BIN)/.installed
install-dev: $(BIN)/.installed-dev $(SSLYZE_VENV)/.installed browser-deps tls-deps tiers-deps deploy-deps \
	node-deps

# Debian packages the test suite drives: chromium (browser tests), testssl.sh (TLS scan);
# tiers-deps (nginx, nftables, PostgreSQL server, Redis) and deploy-deps (.venv-k8s: checkov,
# kubernetes-validate) are declared further down.
browser-deps:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
tls-deps:
	@command -v testssl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq testssl.sh >/dev/null; }
# The tracking spec's Node SDK (tests/events/test_spec_clients.py), from the npm registry by
# the lock file's integrity hashes.
node-deps: tests/node/node_modules/.installed
tests/node/node_modules/.installed: tests/node/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }
	cd tests/node && npm ci --no-audit --no-fund --ignore-scripts --silent
	touch $@

## make run — install, prepare var/, migrate, and serve https://localhost:8443
run: $(BIN)/.installed
	$(BIN)/enclave serve

## make test — install dev dependencies and run the whole suite (SQLite, then PostgreSQL)
test: install-dev
	$(BIN)/python -m enclave.testing.run $(ARGS)

## make lint — ruff and bandit alone (the suite runs the same checks; .ci/run relies on that)
lint: $(BIN)/.installed-dev
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/bandit -q -c pyproject.toml -r src --severity-level high

## make scan — the CI scanners: ruff, bandit, check --deploy, dependency audit
scan: lint
	$(BIN)/enclave deps audit --advisory-db $(ADVISORY_DB) --requirements requirements/base.txt

## make lock — re-resolve requirements/*.in into hash-pinned lock files
lock:
	cd requirements && ../$(PIP_COMPILE) -o base.txt base.in && ../$(PIP_COMPILE) -o dev.txt dev.in \
		&& ../$(PIP_COMPILE) -o sslyze.txt sslyze.in \
		&& ../$(PIP_COMPILE) -o deploy.txt deploy.in

bench: $(BIN)/.installed-dev
	$(BIN)/python -m benchmarks

clean-venv:
	rm -rf $(VENV) $(SSLYZE_VENV)

# ---- n-tier deployment (issue 9; docs/deployment.md) ----
K8S_VENV := .venv-k8s
.PHONY: tiers tiers-down tiers-deps deploy-deps deploy-check

## make tiers — local n-tier deployment (root): a network namespace per service, nftables
## from deploy/tiers.toml, nginx/gunicorn/Celery/PostgreSQL/Redis; prints the matrix
tiers: $(BIN)/.installed tiers-deps
	$(BIN)/enclave deploy local up
	$(BIN)/enclave deploy local matrix

## make tiers-down — remove exactly what `make tiers` created (recorded names only)
tiers-down: $(BIN)/.installed
	$(BIN)/enclave deploy local down

# Debian packages the local tiers run: iproute2, nftables, nginx, PostgreSQL, Redis, setpriv.
tiers-deps:
	@missing=; for t in ip nft nginx redis-server redis-cli setpriv; do command -v $$t >/dev/null || missing=1; done; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing=1; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		iproute2 nftables nginx postgresql redis-server util-linux >/dev/null; fi

# kubernetes-validate, checkov and python-hcl2 pin libraries that conflict with ours.
$(K8S_VENV)/.installed: requirements/deploy.txt
	test -x $(K8S_VENV)/bin/python || $(PYTHON) -m venv $(K8S_VENV)
	$(K8S_VENV)/bin/python -m pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements/deploy.txt
	touch $@
deploy-deps: $(K8S_VENV)/.installed

## make deploy-check — tier map, offline Kubernetes validation, checkov on k8s and Terraform
deploy-check: $(BIN)/.installed $(K8S_VENV)/.installed
	$(BIN)/enclave deploy check
	cd deploy/k8s && ../../$(K8S_VENV)/bin/kubernetes-validate --strict -k 1.30.0 namespace.yaml deployment-*.yaml networkpolicies.yaml
	unshare -rn $(K8S_VENV)/bin/checkov --quiet --compact --skip-download -d deploy/k8s --framework kubernetes
	unshare -rn $(K8S_VENV)/bin/checkov --quiet --compact --skip-download -d deploy/aws --framework terraform
	$(K8S_VENV)/bin/terraform fmt -check -recursive deploy/aws
