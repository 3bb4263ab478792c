# Yuqing (舆情雷达). Two commands do all set-up on a fresh machine: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
YUQING := $(BIN)/yuqing
STAMP := $(VENV)/.installed

.PHONY: help setup stack stack-down stack-status run test test-unit test-faults bench eval-sentiment deploy-check deploy-render clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/' | expand -t 18

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found %d.%d): set PYTHON=python3.11" % sys.version_info[:2])'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)  ## venv + Python deps, Debian packages, Kafka/Flink jars (mvn), default models
	$(YUQING) setup

stack: setup  ## start the local stack (Kafka, ClickHouse, Prometheus, Alertmanager)
	$(YUQING) stack up

stack-down:  ## stop the local stack (keeps data; `yuqing stack down --purge` deletes it)
	$(YUQING) stack down

stack-status:
	$(YUQING) stack status

run: setup  ## the whole pipeline on the bundled sample, live (Ctrl-C stops it)
	$(YUQING) run

test: setup  ## every test, against the real services (started and stopped by the tests)
	$(BIN)/pytest -p no:warnings -q -rfEs

test-unit: $(STAMP)  ## only the tests that need no services
	$(BIN)/pytest -p no:warnings -q -m "not services and not flink"

test-faults: setup  ## only the fault-injection tests (Kafka restart, ClickHouse down, job killed...)
	$(BIN)/pytest -p no:warnings -q -rfEs tests/faults

sample: $(STAMP)  ## write the bundled sample (seeded) to .yuqing/sample.jsonl
	$(YUQING) sample --out .yuqing/sample.jsonl --seed 7 --hours 4

bench: setup  ## benchmarks: print a table, write bench/results.json
	$(BIN)/python -m bench

eval-sentiment: $(STAMP)  ## sentiment accuracy and speed against the targets (needs ../shared/data)
	$(BIN)/python -m scoring.sentiment.evaluate

deploy-check: $(STAMP)  ## offline checks of deploy/compose and deploy/k8s
	$(BIN)/python -m yuqing.deploycheck check

deploy-render: $(STAMP)  ## regenerate the k8s/compose copies of rules, dashboards, DDL
	$(BIN)/python -m yuqing.deploycheck render

clean:  ## stop the stack and delete the state folder and venv
	-$(YUQING) stack down --purge
	rm -rf .yuqing $(VENV)
