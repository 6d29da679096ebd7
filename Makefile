# OONI backend on AWS Lambda. The two commands a newcomer needs: `make run` and `make test`.
SHELL := /bin/bash
ARCH ?= arm64
STAGE ?= dev
FN ?= Health
EVENT ?= events/$(FN)/$(firstword $(notdir $(wildcard events/$(FN)/*.json)))
FUNCTION_PACKAGES := $(foreach d,$(filter-out functions/ooni,$(wildcard functions/*)),-p $(notdir $(shell sed -n 's/^name = "\(.*\)"/\1/p' $(d)/Cargo.toml | head -1)))
ENV := source scripts/env.sh &&
# For commands that talk to real AWS: the project's tools on PATH, none of the local emulator's settings.
TOOLS := export PATH="$(CURDIR)/.venv/bin:$$HOME/.cargo/bin:$$PATH" &&

.PHONY: setup run test bench bench-e2e lint build deploy rollback invoke template smoketest clean

setup: ## install every tool a fresh Debian machine lacks (idempotent)
	scripts/setup.sh

run: ## set up, start ClickHouse + AWS emulator, migrate, seed, serve the API on 127.0.0.1:8080
	scripts/run.sh

test: ## the whole test suite against real local services (what CI runs)
	scripts/test.sh

bench: ## benchmarks of every crate that has them (release builds) + cold starts of the artifacts
	$(MAKE) smoketest
	$(ENV) scripts/setup.sh && infra/local/stack.sh start && \
	cargo bench -p ooni-scoring -p ooni-domain && \
	for p in ooni-probe ooni-fastpath ooni-uploader ooni-measurements; do \
	  if [ -d shared/$${p#ooni-} ]; then cargo bench -p $$p || exit 1; fi; done

bench-e2e: ## end-to-end ingest: emulated probes vs ooni dev on a private stack (msmt/s, p99, time to ClickHouse, CPU/msmt)
	scripts/bench-e2e.sh

smoketest: ## release artifacts under a Lambda Runtime API emulator, each on its events/ sample (x86_64)
	$(MAKE) build ARCH=x86_64
	scripts/smoketest.sh

lint: ## clippy (deny warnings), rustfmt, cfn-lint, sam validate --lint
	$(ENV) cargo clippy --workspace --all-targets -- -D warnings && cargo fmt --all --check && \
	cfn-lint template.yaml && sam validate --lint --region us-east-1 -t template.yaml

template: ## regenerate template.yaml from the function table
	cargo run -q --bin ooni -- template

build: ## release build of every Lambda binary for $(ARCH) (target/lambda/<bin>/bootstrap)
	$(ENV) cargo lambda build --release $(if $(filter arm64,$(ARCH)),--arm64,--x86-64) $(FUNCTION_PACKAGES)

deploy: build ## sam deploy to $(STAGE) (samconfig.toml environments)
	$(TOOLS) sam deploy --config-env $(STAGE)

rollback: ## every function of $(STAGE) back to its previous version (ONLY=CheckIn for one; DRY_RUN=1 to look)
	$(TOOLS) python3 scripts/rollback.py --stage $(STAGE) $(if $(ONLY),--function $(ONLY)) $(if $(DRY_RUN),--dry-run)

invoke: ## run one function in-process: make invoke FN=CheckIn EVENT=events/CheckIn/basic.json
	$(ENV) cargo run -q --bin ooni -- invoke $(FN) $(EVENT)

clean:
	infra/local/stack.sh stop || true
	cargo clean
	rm -rf .local .aws-sam
