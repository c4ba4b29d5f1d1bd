# Custos. `make` lists the targets.
GO       ?= go
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/custos
export GOFLAGS ?= -mod=mod

.DEFAULT_GOAL := help
.PHONY: help build run test test-vault test-tools apt-tools lint fuzz bench soak cluster e2e vault nfpm package clean

help: ## list the targets
	@awk 'BEGIN{FS=":.*## "} /^[a-z0-9-]+:.*## /{printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/custos
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/custos

run: build ## build and start a dev node on 127.0.0.1:8200 (address and token printed)
	./$(BIN) server --dev

test: bin/vault bin/nfpm test-tools ## vet, all tests with -race (unit, in-process cluster, end-to-end, fault, keyring against a real Vault), brief fuzzing
	$(GO) vet -tags vault ./...
	$(GO) test -tags vault -race -count=1 -timeout 18m ./...
	$(GO) test -count=1 -timeout 10m -run '^(TestBlob200MBFlatMemory|TestCrossTenantBreach)$$' ./appliance/api # built without -race (//go:build !race): minutes under the detector
	$(MAKE) fuzz FUZZTIME=2000x # ~1.5 min for every target here (10000x took 8.5 min, over make test's budget); an exec count, not a duration: time-boxed fuzzing can end in a spurious "context deadline exceeded" on a loaded machine

# Every fuzz target, as package:target. Each runs on its own (go test
# -fuzz takes one target of one package at a time); FUZZJOBS of them at
# once, each with one worker, so the single-threaded parts (linking the
# instrumented test binary, the baseline) of one overlap the fuzzing of
# another.
FUZZ_TARGETS := \
	./raftstore:FuzzDecodeCommand \
	./raftstore:FuzzLoadDump \
	./appliance/config:FuzzLoad \
	./appliance/logging:FuzzStandardWriter \
	./appliance/apitls:FuzzParseSAN \
	./appliance/api:FuzzCreateTenantBody \
	./appliance/api:FuzzCreateRecordBody \
	./appliance/blobs:FuzzMediaType \
	./appliance/api:FuzzRange \
	./appliance/identity/roles:FuzzParseCustom \
	./appliance/api:FuzzCheckObject \
	./keyring:FuzzOpen \
	./keyring:FuzzUnwrap \
	./keyring:FuzzStreamReader \
	./keyring:FuzzTransitVersion \
	./keyring:FuzzProviderRecord \
	./appliance/audit:FuzzDecode \
	./appliance/audit:FuzzParseCheckpoint \
	./appliance/backup:FuzzParseManifest \
	./appliance/privacy/requests:FuzzParse \
	./appliance/audit:FuzzVerify \
	./appliance/audit:FuzzTallyKey \
	./cmd/custos:FuzzUntarExport \
	./appliance/identity/password:FuzzParse \
	./appliance/identity/token:FuzzVerify \
	./appliance/identity/token:FuzzHashOf \
	./appliance/identity/totp:FuzzVerifyInput \
	./appliance/identity/totp:FuzzParseState \
	./appliance/identity/sso:FuzzParseState \
	./appliance/identity/sso:FuzzClaims \
	./appliance/identity/sso:FuzzParseDiscovery \
	./cmd/custos:FuzzParseMapping \
	./appliance/privacy/deadline:FuzzParseMode \
	./appliance/privacy/deadline:FuzzParsePeriod \
	./appliance/privacy/receipt:FuzzParseManifest \
	./appliance/privacy/receipt:FuzzParseReceipt \
	./appliance/privacy/receipt:FuzzVerifyReceipt \
	./appliance/notify:FuzzFromEnviron \
	./ui:FuzzSessionCookie \
	./ui:FuzzParseScopes \
	./ui:FuzzParseMappings \
	./ui:FuzzParseMetrics \
	./ui:FuzzCheckpointSize \
	./ui:FuzzReadUpload

FUZZTIME ?= 2m
FUZZJOBS ?= 2
fuzz: ## run every fuzz target for FUZZTIME each (default 2m), FUZZJOBS at a time
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P $(FUZZJOBS) -I{} sh -c 't={}; out=$$($(GO) test -run "^$$" -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) -parallel 1 $${t%%:*} 2>&1) || { printf "FAIL %s\n%s\n" "$$t" "$$out"; exit 255; }; case "$$out" in *"fuzz: elapsed"*) echo "ok   $$t";; *) printf "FAIL %s: no such fuzz target\n" "$$t"; exit 255;; esac'

e2e: ## only the end-to-end and fault tests, against a race-detector build of the binary
	CUSTOS_E2E_RACE=1 $(GO) test -race -count=1 -v -run 'TestE2E|TestFault|TestUpgrade' ./cmd/custos

SOAKCOUNT ?= 5
soak: ## the fault, failover and upgrade tests SOAKCOUNT times (default 5) against race-detector builds
	CUSTOS_E2E_RACE=1 $(GO) test -race -count=$(SOAKCOUNT) -timeout 60m -v -run 'TestFault|TestUpgrade' ./cmd/custos
	$(GO) test -race -count=$(SOAKCOUNT) -timeout 30m -run 'Silent|Resumed|HandOver|Kill' ./raftstore

lint: ## gofmt, go vet and staticcheck (with the documentation checks ST1020-ST1022: staticcheck.conf)
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench: ## performance scenarios (3-process cluster over HTTP, in-process raftstore); figures printed
	$(GO) test -run '^$$' -bench 'Apply$$|FsyncFloor' -benchtime 5000x -timeout 30m ./raftstore
	$(GO) test -run '^$$' -bench 'FSMApplyBatch' -benchtime 500x -timeout 30m ./raftstore
	$(GO) test -run '^$$' -bench 'LinearizableRead' -benchtime 3s -timeout 10m ./raftstore
	$(GO) test -run '^$$' -bench 'Restart1M' -benchtime 2x -timeout 30m ./raftstore
	$(GO) test -run '^$$' -bench . -benchmem -count 4 -cpu 1 ./keyring
	$(GO) test -run '^$$' -bench 'Verify' -benchtime 3x -count 3 -cpu 1 ./appliance/audit
	$(GO) test -run '^$$' -bench . -benchtime 20x -count 3 -cpu 1 ./appliance/identity/password
	$(GO) test -run '^$$' -bench 'Verify$$|VerifyCached$$' -benchmem -count 3 -cpu 1 ./appliance/identity/token
	$(GO) test -run '^$$' -bench 'VerifyCachedParallel' -benchmem -count 3 -cpu 1,2 ./appliance/identity/token
	$(GO) test -run '^$$' -bench 'KeysVerify' -benchmem -count 3 -cpu 1 ./appliance/identity/signing
	$(GO) test -run '^$$' -bench 'AuditedRead|Authorize' -benchtime 1500x -count 3 -cpu 1 ./appliance/api
	$(GO) test -run '^$$' -bench . -benchtime 200x -count 3 -cpu 1 ./appliance/identity/totp
	$(GO) test -run '^$$' -bench 'RestrictedGet' -count 3 -cpu 1 ./internal/tenancy
	$(GO) test -run '^$$' -bench 'BackupRestore' -benchtime 1x -timeout 30m ./appliance/backup
	$(GO) test -run '^$$' -bench 'Append' -count 3 ./raftstore
	$(GO) test -run '^$$' -bench 'MetricsScrape' -benchtime 200x -count 3 ./appliance/node
	$(GO) test -tags bench -run '^$$' -bench 'ProveRecord10M' -benchtime 2000x -v -timeout 30m ./raftstore
	$(GO) test -tags bench -count=1 -v -timeout 30m -run 'TestBench' ./cmd/custos
	$(GO) test -tags bench -count=1 -v -timeout 40m -run 'TestBenchRetentionSweep' ./appliance/privacy/retention
	$(GO) test -tags bench -count=1 -v -timeout 20m -run 'TestBenchErase' ./appliance/privacy/erasure
	$(GO) test -tags bench -count=1 -v -timeout 20m -run 'TestBenchExport' ./appliance/privacy/export
	$(GO) test -tags bench -count=1 -v -timeout 30m -run 'TestBenchUI$$' ./ui # the web UI at 1,000 tenants and 1 M audit entries: render time, page weight, first render in Chromium

CLUSTER_DIR := .cluster
cluster: build ## three local nodes on 127.0.0.1 (API 8210/8220/8230); Ctrl-C stops them
	@rm -rf $(CLUSTER_DIR) && mkdir -p $(CLUSTER_DIR)
	@for i in 1 2 3; do printf 'node_id = "n%s"\nregion = "local"\ndata_dir = "%s/n%s"\n[api]\nlisten_address = "127.0.0.1:82%s0"\n[cluster]\nlisten_address = "127.0.0.1:82%s1"\nheartbeat_timeout = "500ms"\nelection_timeout = "500ms"\nleader_lease_timeout = "250ms"\n' $$i $(CURDIR)/$(CLUSTER_DIR) $$i $$i $$i > $(CLUSTER_DIR)/n$$i.toml; done
	@for i in 2 3; do printf 'join = ["127.0.0.1:8211"]\n' >> $(CLUSTER_DIR)/n$$i.toml; done
	@./$(BIN) operator init --config $(CLUSTER_DIR)/n1.toml --format json > $(CLUSTER_DIR)/init.json
	@TOKEN=$$(sed -n 's/.*"operator_token": "\(.*\)".*/\1/p' $(CLUSTER_DIR)/init.json); \
	JOIN=$$(sed -n 's/.*"join_token": "\(.*\)".*/\1/p' $(CLUSTER_DIR)/init.json); \
	trap 'kill $$(cat $(CLUSTER_DIR)/*.pid) 2>/dev/null; wait' INT TERM EXIT; \
	./$(BIN) server --config $(CLUSTER_DIR)/n1.toml 2> $(CLUSTER_DIR)/n1.log & echo $$! > $(CLUSTER_DIR)/n1.pid; \
	until curl -fs --cacert $(CLUSTER_DIR)/n1/tls/ca.crt https://127.0.0.1:8210/v1/sys/health >/dev/null; do sleep 0.1; done; \
	for i in 2 3; do \
	  ./$(BIN) operator join --config $(CLUSTER_DIR)/n$$i.toml --join-token "$$JOIN" > /dev/null || exit 1; \
	  install -m 600 $(CLUSTER_DIR)/n1/seal.age $(CLUSTER_DIR)/n$$i/seal.age; \
	  ./$(BIN) server --config $(CLUSTER_DIR)/n$$i.toml 2> $(CLUSTER_DIR)/n$$i.log & echo $$! > $(CLUSTER_DIR)/n$$i.pid; \
	done; \
	export CUSTOS_CACERT=$(CURDIR)/$(CLUSTER_DIR)/n1/tls/ca.crt; \
	until [ "$$(CUSTOS_TOKEN=$$TOKEN ./$(BIN) --addr 127.0.0.1:8210 operator raft list-peers --format json | grep -c '"voter": true')" = 3 ]; do sleep 0.2; done; \
	CUSTOS_TOKEN=$$TOKEN ./$(BIN) --addr 127.0.0.1:8220 status; \
	printf '\nThree nodes: API on https://127.0.0.1:8210, :8220, :8230; logs in $(CLUSTER_DIR)/.\n  export CUSTOS_ADDR=https://127.0.0.1:8210\n  export CUSTOS_CACERT=%s\n  export CUSTOS_TOKEN=%s\nCtrl-C stops the cluster.\n' "$$CUSTOS_CACERT" "$$TOKEN"; \
	wait

test-vault: bin/vault ## only the keyring's tests against a real Vault server (see vault)
	$(GO) test -tags vault -count=1 -v -run Vault ./keyring ./cmd/custos

# The Vault server is built once per version into a cache outside the
# checkout (it takes ~14 min cold, ~35 s warm, and is ~360 MB), and
# bin/vault is a hard link to it (a copy across file systems).
VAULT_VERSION := $(shell awk 'NF > 1 && $$(NF-1) == "github.com/hashicorp/vault" { print $$NF; exit }' tools/vault/go.mod)
VAULT_CACHE   := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/custos/vault-$(VAULT_VERSION)/vault

vault: bin/vault ## bin/vault: a real Vault server (unmodified, version from tools/vault/go.mod), built once into ~/.cache/custos
bin/vault: $(VAULT_CACHE)
	@mkdir -p bin
	ln -f $< $@ 2>/dev/null || cp $< $@
$(VAULT_CACHE):
	@test -n "$(VAULT_VERSION)" || (echo "no github.com/hashicorp/vault version in tools/vault/go.mod" && exit 1)
	@mkdir -p $(@D)
	cd tools/vault && GOFLAGS= $(GO) build -ldflags='-s -w' -o $@.tmp github.com/hashicorp/vault
	mv $@.tmp $@

# What the unit and package tests (systemd/, packaging/) run: installed
# from Debian's archive when missing (once per machine; lintian and rpm
# are what the package test checks the .deb and the .rpm with; ip builds
# the failover test's network namespaces; chromium is the web UI's
# browser tests' headless browser, npm installs their axe-core).
TEST_TOOLS := systemd-analyze:systemd dpkg-deb:dpkg lintian:lintian rpm:rpm ip:iproute2 chromium:chromium npm:npm

# axe-core, the accessibility rules the web UI's browser tests run in
# Chromium (ui/browser_test.go): a test-only npm package, never committed,
# installed once per version (AxeVersion in internal/testkit/browser) into
# the same cache as Vault, where the tests read it. The screenshots of
# every page those tests visit go to ui/testdata/artifacts (ignored by
# git), or to $$CUSTOS_UI_ARTIFACTS.
AXE_VERSION := $(shell awk -F'"' '/^const AxeVersion/ { print $$2; exit }' internal/testkit/browser/browser.go)
AXE_DIR     := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/custos/axe-core-$(AXE_VERSION)
AXE_JS      := $(AXE_DIR)/node_modules/axe-core/axe.min.js

test-tools: apt-tools $(AXE_JS)
apt-tools:
	@missing=""; for t in $(TEST_TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; fi
$(AXE_JS): | apt-tools
	@test -n "$(AXE_VERSION)" || (echo "no AxeVersion in internal/testkit/browser/browser.go" && exit 1)
	@mkdir -p $(AXE_DIR)
	npm install --prefix $(AXE_DIR) --no-save --no-audit --no-fund --ignore-scripts --no-package-lock axe-core@$(AXE_VERSION)
	@test -s $@

# nfpm, the .deb and .rpm packager, built once per version (tools/nfpm/go.mod)
# into the same cache as Vault; bin/nfpm is a hard link to it.
NFPM_VERSION := $(shell awk '$$1 == "github.com/goreleaser/nfpm/v2" { print $$2; exit }' tools/nfpm/go.mod)
NFPM_CACHE   := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/custos/nfpm-$(NFPM_VERSION)/nfpm

nfpm: bin/nfpm ## bin/nfpm: the packager (version from tools/nfpm/go.mod), built once into ~/.cache/custos
bin/nfpm: $(NFPM_CACHE)
	@mkdir -p bin
	ln -f $< $@ 2>/dev/null || cp $< $@
$(NFPM_CACHE):
	@test -n "$(NFPM_VERSION)" || (echo "no github.com/goreleaser/nfpm/v2 version in tools/nfpm/go.mod" && exit 1)
	@mkdir -p $(@D)
	cd tools/nfpm && GOFLAGS= $(GO) build -ldflags='-s -w' -o $@.tmp github.com/goreleaser/nfpm/v2/cmd/nfpm
	mv $@.tmp $@

# The package version: semver, so nfpm can write it for dpkg and rpm alike
# (0.0.0-dev.abc1234 becomes 0.0.0~dev.abc1234). A release sets it.
PKG_VERSION ?= 0.0.0-dev.$(shell git rev-parse --short HEAD 2>/dev/null || echo 0)
package: bin/nfpm ## dist/: the .deb and .rpm of a static, stripped custos (unit, config, completions, man pages)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-X main.version=$(PKG_VERSION) -s -w' -o dist/custos ./cmd/custos
	packaging/build.sh dist/custos bin/nfpm dist $(PKG_VERSION)

clean: ## remove build output and the local cluster
	rm -rf bin dist $(CLUSTER_DIR)
