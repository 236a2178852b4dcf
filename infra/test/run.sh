#!/usr/bin/env bash
# The one test command (`make test`): installs what the tests need (pinned),
# generates the dashboard's API types and rebuilds it, checks both match what is
# committed and lints it, checks the Rust's format and lints, starts moto's
# DynamoDB-compatible server and cargo-lambda's Lambda runtime emulator on free
# loopback ports, runs every test of the workspace against them (then again with
# the clock 400 days ahead), stops what it started, runs the dashboard's tests in
# Chromium, follows the README's walkthrough, then checks the deployment:
# template.yaml linted and checked against the code, every function built for
# Lambda (arm64); and last, the built template under `sam local`, in a Docker
# engine of its own (infra/test/sam_local.sh).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/.venv"
requirements="$root/infra/test/requirements.txt"
logs="$root/target/test-logs"
mkdir -p "$logs"

say() { printf '==> %s\n' "$*"; }
# Installs a Debian package whose command is missing (the package's name).
debian_install() {
  command -v "$1" >/dev/null 2>&1 && return
  say "installing Debian's $1"
  local sudo_; sudo_="$([ "$(id -u)" = 0 ] || echo sudo)"
  $sudo_ apt-get install -y -q "$1" >/dev/null 2>&1 \
    || { $sudo_ apt-get update -q >/dev/null && $sudo_ apt-get install -y -q "$1" >/dev/null; }
}

# 1. moto, pinned, in the project's own virtualenv (reinstalled when the pins change).
stamp="$venv/.requirements.sha256"
wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/moto_server" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  say "installing moto (pinned in infra/test/requirements.txt) into .venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "$requirements"
  echo "$wanted" > "$stamp"
fi

# 2. moto on a free loopback port.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
# moto_serial.py says why it serialises requests.
"$venv/bin/python" "$root/infra/test/moto_serial.py" 127.0.0.1 "$port" > "$logs/moto.log" 2>&1 &
moto_pid=$!
pids=("$moto_pid")
# Each server runs in its own process group, so that stopping it stops its children.
# On failure, the disk and memory left are printed last, so that a build killed
# for want of either is told apart from a broken test.
on_exit() {
  local status=$?
  for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  if [ "$status" != 0 ]; then
    say "failed (exit $status); disk and memory left:"
    df -h "$root" | tail -n 1
    free -h | sed -n 2p
  fi
}
trap on_exit EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then say "moto failed to start:"; cat "$logs/moto.log"; exit 1; fi
  sleep 0.2
done
say "moto is serving DynamoDB on http://127.0.0.1:$port"

export PULSE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export PULSE_PAYLOAD_CORPUS="${PULSE_PAYLOAD_CORPUS:-$root/../shared/whatsapp-payloads}"

# 3. The dashboard: its pinned packages (dashboard/package-lock.json), its API types
# generated again from dashboard/openapi.json (which tests/e2e.rs holds to what the
# API serves), rebuilt; the binaries embed dashboard/dist as committed, so neither
# may change.
say "rebuilding the dashboard (its API types and dashboard/dist must match what is committed)"
(cd dashboard && npm ci --no-audit --no-fund --loglevel=error \
  && npm run --silent types > "$logs/dashboard-types.log" && npm run --silent build > "$logs/dashboard-build.log")
say "linting the dashboard's TypeScript and checking its format (eslint, prettier)"
(cd dashboard && npm run --silent lint && npm run --silent format:check)
if [ -n "$(git status --porcelain -- dashboard/dist dashboard/src/api-types.ts)" ]; then
  say "the dashboard differs from what is committed: run 'cd dashboard && npm run types && npm run build' and commit src/api-types.ts and dist"
  git status --short -- dashboard/dist dashboard/src/api-types.ts
  exit 1
fi

# The end-to-end tests run the `pulse` binary and the emulator runs the
# functions' binaries, which test builds do not produce: build the binaries first.
say "building"
cargo build --workspace --bins
# rustfmt's layout, and the workspace's lints ([workspace.lints] in Cargo.toml) as errors.
say "checking the format (cargo fmt --check)"
cargo fmt --all --check
say "linting (clippy, warnings are errors)"
cargo clippy --workspace --all-targets --quiet -- -D warnings

# 4. The Lambda runtime emulator: its invoke API and runtime API, into which
# tests/runtime.rs starts the built function binaries as Lambda would.
# shellcheck source=../deploy/tools.sh
source "$root/infra/deploy/tools.sh"
lambda_port="$(free_port)"
setsid cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port "$lambda_port" \
  > "$logs/lambda-watch.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $lambda_port), 1)" 2>/dev/null; then break; fi
  sleep 0.2
done
python3 -c "import socket; socket.create_connection(('127.0.0.1', $lambda_port), 1)" 2>/dev/null \
  || { say "cargo lambda watch failed to start:"; cat "$logs/lambda-watch.log"; exit 1; }
export PULSE_TEST_LAMBDA_ENDPOINT="http://127.0.0.1:$lambda_port"
say "cargo lambda watch is serving the Lambda invoke API on $PULSE_TEST_LAMBDA_ENDPOINT"

# 5. Every Rust test.
say "running the tests"
# With nextest when present; $1, if given, is a nextest filter expression.
# tests/sam_local.rs runs in step 9, once `sam local` is up.
rust_tests() {
  if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --no-fail-fast --profile ci -E "not binary(sam_local)${1:+ and $1}"
  else
    cargo test --workspace --all-targets --no-fail-fast -- --skip sam_local
  fi
}
rust_tests

# 5b. The same tests a year and more ahead (libfaketime moves the clock of every
# test process and what it starts), so that no test depends on the date it runs:
# fixed times in fixtures are then 400 days old, past every time-bounded read.
# The soak is left out: it only ever uses the current time, and takes a minute.
debian_install faketime
say "running the tests again with the clock 400 days ahead ($(faketime -f +400d date -u +%F))"
CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER="faketime -m -f +400d" rust_tests 'not binary(soak)'

# 6. The dashboard in Debian's Chromium (never a downloaded browser), against a
# stack of its own.
debian_install chromium
say "running the dashboard's browser tests in $(chromium --version)"
PULSE_BIN="$root/target/debug/pulse" CHROMIUM="$(command -v chromium)" \
  node --test --test-reporter=spec dashboard/tests/

# 7. The README's walkthrough, as written (on ports 3000 and 3001, free by now).
say "following the README's Try it section"
PULSE_BIN="$root/target/debug/pulse" bash "$root/infra/test/walkthrough.sh" > "$logs/walkthrough.log" 2>&1 \
  || { cat "$logs/walkthrough.log"; exit 1; }
tail -n 1 "$logs/walkthrough.log"

# 8. The deployment: template.yaml and the arm64 builds.
bash "$root/infra/deploy/check.sh"

# 9. The built template under `sam local`, in a Docker engine of its own.
bash "$root/infra/test/sam_local.sh"
