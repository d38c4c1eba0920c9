# One-command entry points. The first target that needs Python builds .venv from requirements.lock.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed-$(shell sha256sum requirements.lock 2>/dev/null | cut -c1-12)
CHROMIUM := /usr/bin/chromium
# User-supplied values reach recipes only as quoted environment variables ("$$SCENARIO"), never spliced into
# the command text, so no value can become a shell command.
export SCENARIO ?= default
export PORT ?= 8000
export RUN ?=
export A ?=
export B ?=
export NAME ?=
export REPLACE ?=
export RESUME ?=
export DURATION ?= 300
export PYTHONPATH := $(CURDIR)

.PHONY: help install benchmark quick timeline burst slow-clients open capacity soak test test-fast lint plots reference compare serve-sync serve-async lock clean-venv postgres-server nginx

help:
	@echo "make benchmark [SCENARIO=name|path]  run a scenario (default: default), charts and report in results/"
	@echo "make benchmark RESUME=results/<run>  finish an interrupted run from its first missing step"
	@echo "make quick                           3 user levels, about 80 s"
	@echo "make timeline                        two pages and a short request together, on one worker each side"
	@echo "make burst [SCENARIO=default]       the burst over time alone: 5 users, 500 at once, 5 again"
	@echo "make slow-clients [SCENARIO=behind-proxy]  K slow connections against each server while its users run"
	@echo "make open [SCENARIO=open-default]  open arrivals alone: each server at each [load] rate, latency from the schedule"
	@echo "make capacity [SCENARIO=default]    the highest rate each server sustains with p99 under [load] slo_p99_ms"
	@echo "make soak [DURATION=300]             async server at 500 users; fails on any failed request or >10% memory growth"
	@echo "make test                            unit, contract and integration tests (installs what it needs)"
	@echo "make lint                            ruff and mypy"
	@echo "make nginx                           install Debian's nginx if missing (for servers with proxy = \"nginx\")"
	@echo "make plots RUN=results/<run>         redraw a run's charts and report from its saved data"
	@echo "make reference RUN=results/<run> NAME=<name> [REPLACE=1]  a complete run as results/reference/<name>, raw data included"
	@echo "make compare A=results/<run> B=results/<run>  two runs of one scenario side by side, judged against their spread"
	@echo "make serve-sync / serve-async [PORT=8000]  run one server in the foreground"

install: $(STAMP)

# Exact versions and hashes come from the lock file; a changed lock file rebuilds the environment.
$(STAMP): requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	@rm -f $(VENV)/.installed-*
	@touch $@

# Only a PostgreSQL scenario needs the database server: the simulated ones run on any machine as they always did.
benchmark: $(STAMP)
	@file="$$SCENARIO"; case "$$file" in */*|*.toml) ;; *) file="scenarios/$$file.toml";; esac; \
	if [ -z "$$RESUME" ] && grep -qE '^[[:space:]]*backend[[:space:]]*=[[:space:]]*"postgres"' "$$file" 2>/dev/null; \
	then $(MAKE) --no-print-directory postgres-server; fi
	@file="$$SCENARIO"; case "$$file" in */*|*.toml) ;; *) file="scenarios/$$file.toml";; esac; \
	if [ -z "$$RESUME" ] && grep -qE '^[[:space:]]*proxy[[:space:]]*=[[:space:]]*"nginx"' "$$file" 2>/dev/null; \
	then $(MAKE) --no-print-directory nginx; fi
	@if [ -n "$$RESUME" ]; then set -x; $(PY) -m runner --resume "$$RESUME"; \
	else set -x; $(PY) -m runner "$$SCENARIO"; fi

quick: $(STAMP)
	$(PY) -m runner quick

timeline: $(STAMP)
	$(PY) -m runner.timeline "$$SCENARIO"

burst: $(STAMP)
	$(PY) -m runner.burst "$$SCENARIO"

# Without SCENARIO on the command line or in the environment, slow clients run against behind-proxy: the same
# servers with and without nginx in front.
slow-clients: $(STAMP)
	@scenario="$$SCENARIO"; [ "$(origin SCENARIO)" = file ] && scenario=behind-proxy; \
	file="$$scenario"; case "$$file" in */*|*.toml) ;; *) file="scenarios/$$file.toml";; esac; \
	if grep -qE '^[[:space:]]*proxy[[:space:]]*=[[:space:]]*"nginx"' "$$file" 2>/dev/null; \
	then $(MAKE) --no-print-directory nginx || exit 1; fi; \
	set -x; $(PY) -m runner.slow_clients "$$scenario"

# Without SCENARIO on the command line or in the environment, open arrivals run the rates of open-default.
open: $(STAMP)
	@scenario="$$SCENARIO"; [ "$(origin SCENARIO)" = file ] && scenario=open-default; \
	set -x; $(PY) -m runner.open_loop "$$scenario"

capacity: $(STAMP)
	$(PY) -m runner.capacity "$$SCENARIO"

soak: $(STAMP)
	$(PY) -m runner.soak --duration "$$DURATION"

test: $(STAMP) $(CHROMIUM) postgres-server nginx
	$(PY) -m pytest

# The browser test opens report.html in Debian's Chromium; Playwright never downloads a browser of its own.
# test-fast leaves the browser test out and needs none of this.
$(CHROMIUM):
	@if [ "$$(id -u)" -eq 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "$(CHROMIUM) is missing: run 'apt-get install chromium' as root" >&2; exit 1; fi; \
	set -x; $$sudo apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium

# A scenario with [database] backend = "postgres" runs its own throwaway PostgreSQL cluster (runner/postgres.py), and
# `make test` starts one: the server binaries come from the machine's packages, as Chromium does. Already there
# (Debian's /usr/lib/postgresql/<version>/bin, or wherever pg_config says): nothing to do.
postgres-server:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || \
		{ command -v pg_config >/dev/null && test -x "$$(pg_config --bindir)/initdb"; }; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "the PostgreSQL server is missing: run 'apt-get install postgresql' as root" >&2; exit 1; fi; \
	set -x; $$sudo apt-get update && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql

# A server with proxy = "nginx" runs behind Debian's nginx (runner/proxy.py writes its configuration per step and
# starts it), installed like Chromium and PostgreSQL when it is missing: nginx-light where Debian still has it (its
# proxy and upstream keep-alive are all the harness needs), else nginx. The harness starts its own nginx; Debian's
# service must not run beside it (port 80, CPU on the server's core), so a policy-rc.d keeps the package from
# starting it (one already in place, as in a container, is left as it is), and it is disabled and stopped anyway.
nginx:
	@if command -v nginx >/dev/null || test -x /usr/sbin/nginx; then exit 0; fi; \
	if [ "$$(id -u)" -eq 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
	else echo "nginx is missing: run 'apt-get install nginx-light' (or nginx) as root" >&2; exit 1; fi; \
	if [ ! -e /usr/sbin/policy-rc.d ]; then trap '$$sudo rm -f /usr/sbin/policy-rc.d' EXIT; \
		printf '#!/bin/sh\nexit 101\n' | $$sudo tee /usr/sbin/policy-rc.d >/dev/null && \
		$$sudo chmod 755 /usr/sbin/policy-rc.d; fi; \
	set -x; $$sudo apt-get update && \
	pkg=nginx && if apt-cache show nginx-light 2>/dev/null | grep -q '^Package: nginx-light$$'; then pkg=nginx-light; fi && \
	$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$$pkg" || exit 1; \
	if command -v systemctl >/dev/null; then $$sudo systemctl disable nginx || true; fi; \
	if [ -d /run/systemd/system ]; then $$sudo systemctl stop nginx || true; fi; \
	$$sudo update-rc.d nginx disable >/dev/null 2>&1 || true; \
	if [ -s /run/nginx.pid ]; then $$sudo /usr/sbin/nginx -s quit || true; fi

test-fast: $(STAMP)
	$(PY) -m pytest -m "not integration"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

plots: $(STAMP)
	@test -n "$$RUN" || { echo "usage: make plots RUN=results/<run>"; exit 2; }
	$(PY) plots.py "$$RUN"

# REPLACE only switches on a fixed flag; the run and the name reach the command as quoted values.
reference: $(STAMP)
	@test -n "$$RUN" && test -n "$$NAME" || { echo "usage: make reference RUN=results/<run> NAME=<name> [REPLACE=1]"; exit 2; }
	$(PY) -m runner.reference $${REPLACE:+--replace} -- "$$RUN" "$$NAME"

compare: $(STAMP)
	@test -n "$$A" && test -n "$$B" || { echo "usage: make compare A=results/<run> B=results/<run>"; exit 2; }
	$(PY) -m runner.compare -- "$$A" "$$B"

serve-sync: $(STAMP)
	$(PY) -m runner.serve sync --port "$$PORT"

serve-async: $(STAMP)
	$(PY) -m runner.serve async --port "$$PORT"

# Regenerate requirements.lock from pyproject.toml (needs network access to PyPI).
lock:
	$(PYTHON) -m venv /tmp/bench-lock-venv && /tmp/bench-lock-venv/bin/pip install --quiet uv==0.13.8
	/tmp/bench-lock-venv/bin/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
		--generate-hashes --no-header --output-file requirements.lock

clean-venv:
	rm -rf $(VENV)
