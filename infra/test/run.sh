#!/usr/bin/env bash
# The one test command (`make test`): installs what the tests need (pinned),
# starts moto's DynamoDB-compatible server on a free loopback port, runs every
# test of the workspace against it, and stops what it started.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
venv="$root/.venv"
requirements="$root/infra/test/requirements.txt"
logs="$root/target/test-logs"
mkdir -p "$logs"

say() { printf '==> %s\n' "$*"; }

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
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# moto_serial.py says why it serialises requests.
"$venv/bin/python" "$root/infra/test/moto_serial.py" 127.0.0.1 "$port" > "$logs/moto.log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then say "moto failed to start:"; cat "$logs/moto.log"; exit 1; fi
  sleep 0.2
done
say "moto is serving DynamoDB on http://127.0.0.1:$port"

export PULSE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export PULSE_PAYLOAD_CORPUS="${PULSE_PAYLOAD_CORPUS:-$root/../shared/whatsapp-payloads}"

# 3. Everything: unit tests, the store contract on both stores, end-to-end tests.
# The end-to-end tests also run the `pulse` binary itself, which test builds do
# not produce: build the binaries first.
say "building"
cargo build --workspace --bins

say "running the tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast --profile ci
else
  cargo test --workspace --all-targets --no-fail-fast
fi
