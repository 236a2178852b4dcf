#!/usr/bin/env bash
# Runs the README's "Try it" walkthrough as a new user would, command by command,
# in a fresh folder: the commands are read out of README.md itself, so the test
# and the document cannot drift apart. Two liberties, both said here:
#   - `cargo run --release` is the already built debug `pulse` (a release build
#     would add ten minutes to the test command for the same code);
#   - `pulse simulate`'s `--duration 2m` runs 5 s, and `--duration 20s` 3 s.
# The interactive wscat session is left out (tests/live.rs covers the WebSocket).
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
pulse="${PULSE_BIN:-$root/target/debug/pulse}"
work="$(mktemp -d)"
stack=""
# The stack is `bash block-1.sh` and, under it, pulse: signal pulse.
stop_stack() { [ -n "$stack" ] && pkill "-$1" -P "$stack" 2>/dev/null; }
trap 'stop_stack KILL || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
ln -s "$root/events" "$work/events"
cd "$work"

# The code blocks of the README's "Try it" section, in order, one file each.
awk '/^## Try it/{on=1} /^### `pulse serve` options/{on=0}
     on && /^```sh/{n++; file=sprintf("block-%d.sh", n); inside=1; next}
     on && /^```/{inside=0; next}
     inside{print > file}' "$root/README.md"
[ -f block-1.sh ] && [ -f block-4.sh ] || { echo "README.md: the Try it section's blocks are missing"; exit 1; }

# What a new user's shell would run for `cargo run --release [-- args]`.
cargo() {
  [ "$1 $2" = "run --release" ] || { echo "unexpected: cargo $*"; return 1; }
  shift 2
  [ "${1:-}" = "--" ] && shift
  "$pulse" "$@"
}
export -f cargo
export pulse

fail() { echo "walkthrough: $*"; exit 1; }

echo "--- block 1 (starts the stack): $(cat block-1.sh)"
grep -qx 'cargo run --release' block-1.sh || fail "block 1 is not the first command"
bash block-1.sh > stack.out 2> stack.err &
stack=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:3000/health > /dev/null && break; sleep 0.1; done
curl -sf http://127.0.0.1:3000/health > /dev/null || { cat stack.out stack.err; fail "the stack did not start on port 3000"; }
grep -q "DASHBOARD_TOKEN=" stack.out || fail "the banner does not print the generated token"
curl -sf http://127.0.0.1:3000/ -o /dev/null || fail "no dashboard at http://127.0.0.1:3000/"

echo "--- block 2 (simulate): $(cat block-2.sh)"
sed 's/--duration 2m/--duration 5s/' block-2.sh > block-2-short.sh
bash block-2-short.sh > simulate.out 2> simulate.err || { cat simulate.out simulate.err; fail "simulate failed"; }
cat simulate.out
grep -Eq "^Sent [0-9]+ webhooks .*, 0 errors\.$" simulate.out || fail "simulate did not end with its summary"

echo "--- block 3 (a week of history): $(cat block-3.sh)"
grep -q -- "--days 7" block-3.sh || fail "block 3 does not spread the traffic over days"
sed 's/--duration 20s/--duration 3s/' block-3.sh > block-3-short.sh
bash block-3-short.sh > history.out 2> history.err || { cat history.out history.err; fail "simulate --days failed"; }
cat history.out
grep -Eq "^Sent [0-9]+ webhooks .*, 0 errors\.$" history.out || fail "simulate --days did not end with its summary"

echo "--- block 4 (by hand)"
cat block-4.sh
bash block-4.sh > by-hand.out 2> by-hand.err || { cat by-hand.out by-hand.err; fail "a command of block 4 failed"; }
cat by-hand.out
[ "$(grep -c ' → 200 ' by-hand.out)" = "$(ls events/whatsapp/*.json | wc -l)" ] || fail "not every sample was accepted"
grep -q '"total":' by-hand.out || fail "no button_clicks with a total"
grep -Eq '"sent": [1-9]' by-hand.out || fail "the funnel shows no message sent"
grep -q '"code": 131026' by-hand.out || fail "the failures show no undeliverable message"
grep -q '"status": "healthy"' by-hand.out || fail "health is not healthy"

echo "--- Ctrl-C stops the stack cleanly"
stop_stack INT
wait "$stack" || fail "the stack did not exit cleanly on Ctrl-C"
stack=""
grep -q "Stopped. Everything acknowledged is stored." stack.out || fail "no goodbye"
echo "walkthrough: the README's Try it section works as written"
