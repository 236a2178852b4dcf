#!/usr/bin/env bash
# The one test command (`make test`): installs what the tests need (pinned),
# starts moto's DynamoDB-compatible server and cargo-lambda's Lambda runtime
# emulator on free loopback ports, runs every test of the workspace against
# them, stops what it started, then checks the deployment: template.yaml linted
# and checked against the code, every function built for Lambda (arm64).
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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port="$(free_port)"
# moto_serial.py says why it serialises requests.
"$venv/bin/python" "$root/infra/test/moto_serial.py" 127.0.0.1 "$port" > "$logs/moto.log" 2>&1 &
moto_pid=$!
pids=("$moto_pid")
# Each server runs in its own process group, so that stopping it stops its children.
trap 'for pid in "${pids[@]}"; do kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done' EXIT
for _ in $(seq 1 100); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then break; fi
  if ! kill -0 "$moto_pid" 2>/dev/null; then say "moto failed to start:"; cat "$logs/moto.log"; exit 1; fi
  sleep 0.2
done
say "moto is serving DynamoDB on http://127.0.0.1:$port"

export PULSE_TEST_DYNAMODB_ENDPOINT="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
export PULSE_PAYLOAD_CORPUS="${PULSE_PAYLOAD_CORPUS:-$root/../shared/whatsapp-payloads}"

# 3. The end-to-end tests run the `pulse` binary and the emulator runs the
# functions' binaries, which test builds do not produce: build the binaries first.
say "building"
cargo build --workspace --bins

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

# 5. Every test.
say "running the tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --no-fail-fast --profile ci
else
  cargo test --workspace --all-targets --no-fail-fast
fi

# 6. The deployment: template.yaml and the arm64 builds.
bash "$root/infra/deploy/check.sh"
