#!/usr/bin/env bash
# The deployment half of the test command (run by infra/test/run.sh): installs
# the pinned deployment tooling, lints template.yaml with cfn-lint and
# `sam validate --lint`, checks it against the code (and its alarms against the
# metrics the webhook function logged in the tests), and builds every function
# for Lambda (arm64) with cargo-lambda, printing each bootstrap's size; then
# `sam build`, which builds them again its own way, offline.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

say() { printf '==> %s\n' "$*"; }

# shellcheck source=tools.sh
source "$root/infra/deploy/tools.sh"

say "linting template.yaml (cfn-lint, sam validate --lint)"
cfn-lint template.yaml
sam validate --lint --template template.yaml --region us-east-1
# The metrics the alarms watch against those the webhook function logged in
# tests/runtime.rs (EMF lines).
python3 infra/deploy/check_template.py template.yaml "$root" --emf target/test-logs/webhook-emf.jsonl

say "building the functions for Lambda (arm64)"
rustup target add aarch64-unknown-linux-gnu >/dev/null
functions=(webhook metrics dashboard ws-connect ws-disconnect ws-default broadcast alert-notify)
cargo lambda build --release --arm64 "${functions[@]/#/--package=}"
for function in "${functions[@]}"; do
  bootstrap="target/lambda/$function/bootstrap"
  # ELF e_machine 183 is aarch64.
  python3 -c "import sys; h=open(sys.argv[1],'rb').read(20); sys.exit(not (h[:4]==b'\x7fELF' and int.from_bytes(h[18:20],'little')==183))" "$bootstrap" \
    || { say "$bootstrap is not an arm64 executable"; exit 1; }
  printf '    %-14s %8s KiB\n' "$function" "$(( $(stat -c %s "$bootstrap") / 1024 ))"
done

say "sam build (offline; what \`sam deploy\` uploads)"
mkdir -p target/test-logs
sam build --template template.yaml --build-dir target/sam-build > target/test-logs/sam-build.log 2>&1 \
  || { cat target/test-logs/sam-build.log; say "sam build failed"; exit 1; }
# sam build ignores Conditions: AlertNotifyFunction is built without an AlertWebhookUrl too.
for function in WebhookFunction MetricsFunction DashboardFunction WsConnectFunction WsDisconnectFunction WsDefaultFunction BroadcastFunction AlertNotifyFunction; do
  test -x "target/sam-build/$function/bootstrap" || { say "sam build made no bootstrap for $function"; exit 1; }
done
say "sam build made every function"
