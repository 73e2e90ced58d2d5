# gregor: one build. `make` builds, `make run` installs build deps + builds + serves,
# `make test` runs every test, `make fuzz` runs every fuzz target briefly, `make bench` benchmarks.

CC      ?= cc
CLANG   ?= clang
PYTHON  ?= python3
BUILD   ?= build
CFLAGS_COMMON = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -Isrc -I$(BUILD)/gen -pthread
OPT     ?= -O2
CFLAGS  += $(CFLAGS_COMMON) $(OPT)
LIBS_CORE = -lzookeeper_mt -lssl -lcrypto -lz -lzstd -llz4 -lsnappy -lpthread -lm
LIBS_CLI  = -lrdkafka
SAN_FLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

GEN_DEF  = src/proto/messages.def
GEN_TOOL = tools/gen_proto.py
GEN_C    = $(BUILD)/gen/proto/messages.c
GEN_H    = $(BUILD)/gen/proto/messages.h

CORE_DIRS = src/common src/net src/proto src/broker src/log src/partition src/group src/txn src/cluster
CORE_SRC  = $(foreach d,$(CORE_DIRS),$(wildcard $(d)/*.c))
CLI_SRC   = $(wildcard src/cli/*.c) src/main.c
UNIT_SRC  = $(wildcard tests/unit/test_*.c)
FUZZ_SRC  = $(wildcard tests/fuzz/fuzz_*.c)

# The web console's files (web/), embedded into the binary by tools/embed_assets.py.
WEB_FILES = $(wildcard web/*)
ASSETS_C  = $(BUILD)/gen/console_assets_data.c

CORE_OBJ = $(CORE_SRC:%.c=$(BUILD)/obj/%.o) $(BUILD)/obj/gen/proto/messages.o $(BUILD)/obj/gen/console_assets_data.o
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN = $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_BIN = $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all run test unit integration asan fuzz fuzz-build bench clean deps gen
all: $(BUILD)/gregor

gen: $(GEN_C) $(GEN_H)
$(GEN_C) $(GEN_H) &: $(GEN_DEF) $(GEN_TOOL)
	@mkdir -p $(BUILD)/gen/proto
	$(PYTHON) $(GEN_TOOL) $(GEN_DEF) $(BUILD)/gen/proto

$(BUILD)/obj/gen/proto/messages.o: $(GEN_C) $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(ASSETS_C): tools/embed_assets.py $(WEB_FILES)
	@mkdir -p $(dir $@)
	$(PYTHON) tools/embed_assets.py web $@

$(BUILD)/obj/gen/console_assets_data.o: $(ASSETS_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

# Debian's ZooKeeper C client is the multi-threaded one (src/cluster/zk.c hands its callbacks
# to the loop thread).
$(BUILD)/obj/src/cluster/%.o: CFLAGS += -DTHREADED

$(BUILD)/libgregor.a: $(CORE_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/gregor: $(CLI_OBJ) $(BUILD)/libgregor.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libgregor.a $(LIBS_CLI) $(LIBS_CORE)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libgregor.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libgregor.a -lcmocka $(LIBS_CORE)

# test_client starts a real broker: the binary it runs sits next to the tests.
$(BUILD)/tests/test_client: $(BUILD)/gregor

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Build dependencies from Debian (make run installs them when missing). libzookeeper-mt-dev is
# ZooKeeper's C client (no JVM) for a broker in a cluster; the ZooKeeper server (`zookeeper`, a
# JVM) is never one of them: `make run` serves one broker without it. tools/test-deps.sh
# installs the server for the tests.
DEB_DEPS = build-essential python3 zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev librdkafka-dev libcmocka-dev \
	libzookeeper-mt-dev libssl-dev
deps:
	@missing=""; for p in $(DEB_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  SUDO=$$( [ $$(id -u) -eq 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; fi

# `make run HTTP=127.0.0.1:8080` also serves the console, /metrics and /health there
# (gregor.http.listener); the broker's log line `HTTP console on http://...` names it.
HTTP ?=
run: deps
	$(MAKE) -j$$(nproc 2>/dev/null || echo 2) all
	./$(BUILD)/gregor serve $(if $(HTTP),--override gregor.http.listener=$(HTTP))

unit: check-layers $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $$t; done

# The include graph as docs/DESIGN.md draws it: arrows only the allowed way, no header cycle.
.PHONY: check-layers
check-layers:
	$(PYTHON) tools/check_layers.py src

# The sanitizer build: same sources, ASan+UBSan, its own build dir.
asan:
	$(MAKE) BUILD=build-asan OPT="-O1 $(SAN_FLAGS)" LIBS_CORE="$(LIBS_CORE) $(SAN_FLAGS)" all unit

# What the tests need (Debian packages, a virtualenv .venv with the Python clients, the Java,
# kafkajs and franz-go suites' dependencies): tools/test-deps.sh installs whatever is missing and
# fails with what it could not install. The test suites run on .venv's Python.
TEST_PYTHON ?= .venv/bin/python
.PHONY: test-deps
test-deps:
	tools/test-deps.sh

INTEGRATION_BIN ?= $(BUILD)/gregor
integration: all
	GREGOR_BIN=$(abspath $(INTEGRATION_BIN)) $(TEST_PYTHON) -m pytest -q tests/integration

# Every test: unit tests and the integration suite both against the ASan+UBSan build, so a
# memory error anywhere a real client reaches fails the run.
test: test-deps
	$(MAKE) -j$$(nproc 2>/dev/null || echo 2) asan
	$(MAKE) integration INTEGRATION_BIN=build-asan/gregor

# The soak (tests/soak/soak.py): the ASan+UBSan broker under producers, consumers joining and
# leaving classic and KIP-848 groups, raw pipelined join+leave and hostile connections for
# SOAK_SECONDS; fails on a sanitizer report, a non-zero exit on SIGTERM or an acked record lost.
SOAK_SECONDS ?= 600
.PHONY: soak
soak: test-deps asan
	$(TEST_PYTHON) tests/soak/soak.py --bin build-asan/gregor --seconds $(SOAK_SECONDS)

# Jepsen-style fault runs (tests/chaos, docs/CHAOS.md): a 3-node ZooKeeper ensemble and 3 brokers
# on 127.0.0.2-4, idempotent acks=all producers and consumers on an RF 3 topic, one fault per
# cycle on a seeded schedule (CHAOS_SEED; random when empty, printed either way), then the
# checker: fails on an acked record lost, a duplicate, a read that vanished or replicas that
# diverge. Needs root (tmpfs, nftables). `chaos` runs gregor (CHAOS_BIN), `chaos-kafka` Apache
# Kafka 3.9 in ZooKeeper mode (the reference), `chaos-ci` the short fixed-seed run of .ci/run.
CHAOS_CYCLES ?= 100
CHAOS_SEED ?=
CHAOS_BIN ?= $(BUILD)/gregor
CHAOS_CI_CYCLES ?= 7
CHAOS_CI_SEED ?= 1
chaos_seed = $(if $(CHAOS_SEED),--seed $(CHAOS_SEED))
.PHONY: chaos chaos-kafka chaos-ci
chaos: test-deps all
	$(TEST_PYTHON) tests/chaos/chaos.py --system gregor --bin $(CHAOS_BIN) --cycles $(CHAOS_CYCLES) $(chaos_seed)

chaos-kafka: test-deps
	$(TEST_PYTHON) tests/chaos/chaos.py --system kafka --cycles $(CHAOS_CYCLES) $(chaos_seed)

chaos-ci: test-deps
	$(MAKE) BUILD=build-asan OPT="-O1 $(SAN_FLAGS)" LIBS_CORE="$(LIBS_CORE) $(SAN_FLAGS)" all
	$(TEST_PYTHON) -m pytest -q tests/chaos
	$(TEST_PYTHON) tests/chaos/chaos.py --system gregor --bin build-asan/gregor \
	  --cycles $(CHAOS_CI_CYCLES) --seed $(CHAOS_CI_SEED)

FUZZ_SECONDS ?= 10
# Each fuzz target links only the layers under test (not net/broker): common, proto and the
# generated codecs, plus FUZZ_EXTRA_<target> (default: the log layer).
FUZZ_BASE_SRC = $(wildcard src/common/*.c src/proto/*.c) $(GEN_C)
FUZZ_EXTRA_DEFAULT = $(wildcard src/log/*.c)
FUZZ_EXTRA_fuzz_request =
# The whole request path in process: net, handlers, log and groups.
FUZZ_EXTRA_fuzz_pipeline = $(wildcard src/net/*.c src/broker/*.c src/log/*.c src/group/*.c src/txn/*.c src/partition/*.c src/cluster/*.c) $(ASSETS_C)
# The outbound client's reading path over a loopback socket: the loop and the client.
FUZZ_EXTRA_fuzz_client_read = src/net/loop.c src/net/client.c src/net/transport.c
# The znode readers of the cluster layer (pure functions: no ZooKeeper client linked).
FUZZ_EXTRA_fuzz_znode = src/cluster/znode.c
# The JSON reader of the reassignment tool's files (common/json.c; no librdkafka linked).
FUZZ_EXTRA_fuzz_reassign_json =
# The __transaction_state record codecs (pure functions).
FUZZ_EXTRA_fuzz_txn_log = src/txn/txn_log.c
# The leader-epoch-checkpoint reader lives with the partition replica.
FUZZ_EXTRA_fuzz_epoch_checkpoint = src/partition/partition.c $(wildcard src/log/*.c)
# The SCRAM server's message and credential parsers (pure functions on OpenSSL).
FUZZ_EXTRA_fuzz_scram = src/broker/scram.c
# The console's If-None-Match reader (a pure function).
FUZZ_EXTRA_fuzz_etag_match = src/broker/console_asset_table.c $(ASSETS_C)
# fuzz_oauth: OAUTHBEARER's client first message, JWT and JWKS parsers.
FUZZ_EXTRA_fuzz_oauth = src/broker/oauth.c
# The log segment reader and gregor dump-log, whose --transaction-log-decoder uses the txn codecs.
FUZZ_EXTRA_fuzz_log_segment = $(wildcard src/log/*.c) src/txn/txn_log.c
# The broker's config files: the config parsers live with the broker (all of it linked).
FUZZ_EXTRA_fuzz_broker_configs = $(FUZZ_EXTRA_fuzz_pipeline)
# The ACL file's reader and writer live with the authorizer (all of the broker linked).
FUZZ_EXTRA_fuzz_acls_file = $(FUZZ_EXTRA_fuzz_pipeline)
# The scram-credentials file's line reader and writer (pure functions on OpenSSL).
FUZZ_EXTRA_fuzz_scram_credentials = src/broker/scram.c
# The client quota file's reader and the rates (quota.c; the file seam of the log layer).
FUZZ_EXTRA_fuzz_client_quotas = src/broker/quota.c $(wildcard src/log/*.c)
# The console API's request readers (body JSON, cursor) and its JSON writer (pure functions).
FUZZ_EXTRA_fuzz_console_json = src/broker/console_parse.c
# fuzz_http: the HTTP request parser, then a server on the loop over a socketpair.
FUZZ_EXTRA_fuzz_http = src/net/loop.c src/net/http.c src/net/sock.c
# The console's record browser on a Fetch response's (or a log read's) batches (console_data.c:
# all of the broker linked).
FUZZ_EXTRA_fuzz_console_browse = $(FUZZ_EXTRA_fuzz_pipeline)
# /metrics' reader of /proc/self/stat lives in metrics.c (all of the broker linked).
FUZZ_EXTRA_fuzz_proc_stat = $(FUZZ_EXTRA_fuzz_pipeline)
fuzz_extra = $(if $(filter undefined,$(origin FUZZ_EXTRA_$(1))),$(FUZZ_EXTRA_DEFAULT),$(FUZZ_EXTRA_$(1)))
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -g -O1 -Isrc -I$(BUILD)/gen \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_BASE_SRC) $(GEN_H) $(ASSETS_C) $(wildcard src/*/*.h) $(wildcard src/*/*.c)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_BASE_SRC) $(call fuzz_extra,$*) $(LIBS_CORE)

fuzz-build: $(FUZZ_BIN)

# A crash fails the run (the log is kept in $(BUILD)/fuzz/<target>.log, reproducers in cwd).
fuzz: fuzz-build
	@set -e; for n in $(notdir $(FUZZ_BIN)); do mkdir -p $(BUILD)/fuzz/corpus-$$n; \
	  seeds=""; [ -d tests/fuzz/seeds/$$n ] && seeds=tests/fuzz/seeds/$$n; \
	  echo "fuzzing $$n for $(FUZZ_SECONDS)s"; \
	  if ! $(BUILD)/fuzz/$$n -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -artifact_prefix=$(BUILD)/fuzz/$$n- \
	      $(BUILD)/fuzz/corpus-$$n $$seeds > $(BUILD)/fuzz/$$n.log 2>&1; then \
	    tail -n 40 $(BUILD)/fuzz/$$n.log; exit 1; fi; \
	  tail -n 2 $(BUILD)/fuzz/$$n.log; done

bench: all
	bench/run-quick.sh

clean:
	rm -rf build build-asan
