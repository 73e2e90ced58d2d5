#!/usr/bin/env bash
# Installs everything `make test` needs on a fresh Debian machine, then says where it is:
#   - Debian packages: the build's, clang (fuzzing), kcat, python3-venv, a JDK + Maven, Node + npm, Go,
#     ZooKeeper 3.8 (server `zookeeper` with its JRE, for the cluster tests, and the C client
#     libzookeeper-mt-dev), nftables (the chaos runs' network partitions), prometheus (promtool
#     checks /metrics), chromium (the web console's page tests drive /usr/bin/chromium through
#     Playwright: no browser is downloaded), gnuplot-nox (the benchmark tests draw their PNG);
#   - a virtualenv at .venv with tests/requirements.txt (pytest, kafka-python 2.0.2,
#     confluent-kafka, beautifulsoup4, playwright), so nothing is pip-installed into the system Python;
#   - the Java client check (tests/java, Maven), Kafka Connect's worker classpath (tests/connect,
#     Maven: connect-runtime, connect-file, connect-json 4.2.0), the Kafka Streams word count
#     (tests/streams, Maven), kafkajs 2.2.4 (tests/js, npm ci) and the
#     franz-go modules (tests/go, go mod download).
# Each step runs only when its result is missing or stale. A step that fails stops the run with
# what failed: a client suite that cannot be installed is a failure, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "test-deps: $*"; }
die() { echo "test-deps: FAILED: $*" >&2; exit 1; }

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive

need=(build-essential clang python3 python3-venv zlib1g-dev libzstd-dev liblz4-dev libsnappy-dev
      librdkafka-dev libcmocka-dev kcat zookeeper libzookeeper-mt-dev libssl-dev openssl nftables
      prometheus chromium gnuplot-nox)
command -v java >/dev/null && command -v mvn >/dev/null || need+=(default-jdk-headless maven)
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
command -v go >/dev/null || need+=(golang-go)
missing=()
for p in "${need[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq || die "apt-get update"
    $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]}"
fi

VENV=.venv
stamp="$VENV/.requirements"
if ! [ -x "$VENV/bin/python" ] || ! cmp -s tests/requirements.txt "$stamp"; then
    say "virtualenv $VENV: tests/requirements.txt"
    python3 -m venv "$VENV" || die "python3 -m venv $VENV (Debian: apt-get install python3-venv)"
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r tests/requirements.txt \
        || die "pip install -r tests/requirements.txt into $VENV"
    cp tests/requirements.txt "$stamp"
fi

jar=tests/java/target/gregor-client-check.jar
if ! [ -f "$jar" ] || [ -n "$(find tests/java/pom.xml tests/java/src -newer "$jar" -print -quit)" ]; then
    say "Java client check (mvn package in tests/java)"
    mvn -q -B -f tests/java/pom.xml package -DskipTests || die "mvn package in tests/java"
fi

connect_libs=tests/connect/target/connect-libs
if ! [ -f "$connect_libs/connect-runtime-4.2.0.jar" ] || ! cmp -s tests/connect/pom.xml "$connect_libs/.pom"; then
    say "Kafka Connect worker classpath (mvn package in tests/connect)"
    mvn -q -B -f tests/connect/pom.xml package || die "mvn package in tests/connect"
    cp tests/connect/pom.xml "$connect_libs/.pom"
fi

jar=tests/streams/target/gregor-streams-wordcount.jar
if ! [ -f "$jar" ] || [ -n "$(find tests/streams/pom.xml tests/streams/src -newer "$jar" -print -quit)" ]; then
    say "Kafka Streams word count (mvn package in tests/streams)"
    mvn -q -B -f tests/streams/pom.xml package -DskipTests || die "mvn package in tests/streams"
fi

if ! [ -f tests/js/node_modules/kafkajs/package.json ] \
   || [ tests/js/package-lock.json -nt tests/js/node_modules/.package-lock.json ]; then
    say "kafkajs (npm ci in tests/js)"
    (cd tests/js && npm ci --no-audit --no-fund >/dev/null) || die "npm ci in tests/js"
fi

(cd tests/go && go mod download) || die "go mod download in tests/go"
say "ok (python: $VENV/bin/python)"
