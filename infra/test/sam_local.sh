#!/usr/bin/env bash
# `sam local` for real, run by infra/test/run.sh after infra/deploy/check.sh has
# run `sam build`: the template's functions under SAM's own emulator, arm64 as
# the template declares them, against the moto server run.sh started
# (PULSE_TEST_DYNAMODB_ENDPOINT). It needs root, for a Docker engine of its own.
#
# What it sets up, and takes down again when it ends, however it ends:
# - Debian's Docker engine, started on its own socket and folders;
# - qemu for arm64, registered with binfmt_misc (unless it already was);
# - SAM's base image, made here from Debian's arm64 libc and busybox, because
#   no image can be pulled on this machine (SAM adds its emulator to it);
# - a rule that takes the containers' connections to the Docker bridge's
#   address on to moto, which listens on loopback only;
# - `sam local start-api`, serving the HTTP API's routes.
# Then tests/sam_local.rs compares the API's answers with `pulse serve`'s and
# invokes the WebSocket and stream functions with `sam local invoke`.
set -euo pipefail

root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
logs="$root/target/test-logs"
mkdir -p "$logs"
say() { printf '==> %s\n' "$*"; }
moto="${PULSE_TEST_DYNAMODB_ENDPOINT:?run by infra/test/run.sh, which starts moto}"
moto_port="${moto##*:}"
[ "$(id -u)" = 0 ] || { say "sam local needs root here (a Docker engine, binfmt, a NAT rule)"; exit 1; }

# shellcheck source=../deploy/tools.sh
source "$root/infra/deploy/tools.sh"

work="$(mktemp -d /tmp/pulse-sam-local.XXXXXX)"
export DOCKER_HOST="unix://$work/docker.sock"
undo=()
# Stops a process (its group, with -g), waiting up to 20 s before killing it.
stop() {
  local target="$1" pid="${1#-}"
  kill -TERM -- "$target" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -KILL -- "$target" 2>/dev/null || true
}
cleanup() {
  local status=$?
  for (( i=${#undo[@]}-1; i>=0; i-- )); do eval "${undo[$i]}" >/dev/null 2>&1 || true; done
  rm -rf "$work" 2>/dev/null || true
  exit "$status"
}
trap cleanup EXIT

# 1. Debian's Docker engine and qemu, and the arm64 packages the base image is
#    made of (downloaded, not installed).
missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v qemu-aarch64-static >/dev/null || missing+=(qemu-user-static)
if [ "${#missing[@]}" -gt 0 ]; then
  say "installing Debian's ${missing[*]}"
  apt-get install -y -q "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null && apt-get install -y -q "${missing[@]}" >/dev/null; }
fi
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  dpkg --add-architecture arm64
  undo+=("dpkg --remove-architecture arm64")
fi
apt-get update -q >/dev/null
(cd "$work" && apt-get download -q libc6:arm64 busybox-static:arm64 > apt.log 2>&1) \
  || { say "Debian's arm64 libc and busybox could not be downloaded:"; cat "$work/apt.log"; exit 1; }

# 2. arm64 executables run by qemu, in containers too (F: the kernel holds the
#    interpreter open, so it need not exist inside the image).
binfmt=/proc/sys/fs/binfmt_misc
if [ ! -e "$binfmt/register" ]; then
  mount -t binfmt_misc binfmt_misc "$binfmt"
  undo+=("umount $binfmt")
fi
if [ ! -e "$binfmt/qemu-aarch64" ]; then
  printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
    > "$binfmt/register"
  undo+=("echo -1 > $binfmt/qemu-aarch64")
fi

# 3. The Docker engine. Its proxy for published ports is off: it would accept
#    SAM's connection to an emulated function before the runtime listens, and
#    SAM would give up. The firewall and forwarding are put back as they were.
iptables-save > "$work/iptables.rules"
# Docker's chains and rules (and this script's NAT rule) out, what was there back.
restore_firewall() {
  local table
  for table in filter nat; do iptables -t "$table" -F; iptables -t "$table" -X; done
  iptables -P FORWARD ACCEPT
  iptables-restore < "$work/iptables.rules"
}
forwarding="$(sysctl -n net.ipv4.ip_forward)"
say "starting a Docker engine ($(dockerd --version))"
setsid dockerd --data-root "$work/data" --exec-root "$work/exec" --pidfile "$work/docker.pid" \
  -H "$DOCKER_HOST" --userland-proxy=false > "$logs/dockerd.log" 2>&1 &
dockerd_pid=$!
undo+=("restore_firewall; sysctl -qw net.ipv4.ip_forward=$forwarding; ip link delete docker0")
undo+=("stop $dockerd_pid")
for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
docker info >/dev/null 2>&1 || { say "dockerd did not start:"; tail -n 20 "$logs/dockerd.log"; exit 1; }

# 4. The base image SAM builds its runtime image from: what the bootstraps need
#    (glibc), a shell for SAM's one RUN step, and the CA certificates.
rootfs="$work/rootfs"
mkdir -p "$rootfs" "$work/image"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$rootfs"; done
for applet in sh mv chmod cp rm mkdir cat ls; do ln -sf busybox "$rootfs/bin/$applet"; done
mkdir -p "$rootfs/tmp" "$rootfs/var/task" "$rootfs/var/runtime" "$rootfs/opt" "$rootfs/etc/pki/tls/certs"
chmod 1777 "$rootfs/tmp"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/pki/tls/certs/ca-bundle.crt"
tar -C "$rootfs" -cf "$work/image/rootfs.tar" .
printf 'FROM scratch\nADD rootfs.tar /\nCMD ["/bin/sh"]\n' > "$work/image/Dockerfile"
base=public.ecr.aws/lambda/provided:al2023-arm64
DOCKER_BUILDKIT=0 docker build -q --platform linux/arm64 -t "$base" "$work/image" >/dev/null
machine="$(docker run --rm --platform linux/arm64 "$base" /bin/busybox uname -m 2>"$work/run.log")" || true
[ "$machine" = aarch64 ] || { say "an arm64 container does not run here:"; cat "$work/run.log"; exit 1; }
say "made $base here (Debian's arm64 libc and busybox); arm64 runs under $(qemu-aarch64-static --version | head -n 1)"

# 5. Moto, for the containers: their connections to the bridge's address on
#    moto's port go on to moto on loopback.
bridge="$(ip -4 -o addr show docker0 | awk '{print $4}' | cut -d/ -f1)"
sysctl -qw net.ipv4.conf.docker0.route_localnet=1
iptables -t nat -I PREROUTING -i docker0 -d "$bridge" -p tcp --dport "$moto_port" \
  -j DNAT --to-destination "127.0.0.1:$moto_port"

# 6. The functions' variables: the README's sam-local.env.json, with this run's
#    moto and tables.
suffix="$(date +%s)-$$"
export PULSE_TEST_SAM_EVENTS_TABLE="sam-events-$suffix" PULSE_TEST_SAM_CONNECTIONS_TABLE="sam-connections-$suffix"
export PULSE_TEST_SAM_ENV_VARS="$work/env.json"
python3 - "$root/events/sam-local.env.json" "$PULSE_TEST_SAM_ENV_VARS" "http://$bridge:$moto_port" <<'PY'
import json, os, sys
source, target, endpoint = sys.argv[1:]
env = json.load(open(source))
# The README's endpoint, wherever the file uses it, becomes this run's.
text = json.dumps(env).replace(env["Parameters"]["AWS_ENDPOINT_URL"], endpoint)
env = json.loads(text)
env["Parameters"]["EVENTS_TABLE"] = os.environ["PULSE_TEST_SAM_EVENTS_TABLE"]
env["Parameters"]["CONNECTIONS_TABLE"] = os.environ["PULSE_TEST_SAM_CONNECTIONS_TABLE"]
json.dump(env, open(target, "w"), indent=2)
PY

# 7. The HTTP API (it stops on SIGTERM, not SIGINT). Warm containers: each
#    function's container starts at its first request and serves the rest.
export PULSE_TEST_SAM_TEMPLATE="$root/target/sam-build/template.yaml"
api_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
say "sam local start-api ($(sam --version)) on http://127.0.0.1:$api_port"
AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
  setsid sam local start-api --template "$PULSE_TEST_SAM_TEMPLATE" --env-vars "$PULSE_TEST_SAM_ENV_VARS" \
  --skip-pull-image --warm-containers LAZY --host 127.0.0.1 --port "$api_port" --region us-east-1 \
  > "$logs/sam-local-start-api.log" 2>&1 &
api_pid=$!
undo+=("stop -$api_pid")
for _ in $(seq 1 300); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $api_port), 1)" 2>/dev/null && break
  kill -0 "$api_pid" 2>/dev/null || { cat "$logs/sam-local-start-api.log"; exit 1; }
  sleep 0.2
done
export PULSE_TEST_SAM_API="http://127.0.0.1:$api_port"

# 8. The test.
say "running tests/sam_local.rs against sam local"
export AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1
# As the workspace, so that the build of run.sh's tests is used as it is.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --all-targets --profile ci -E 'binary(sam_local)'
else
  cargo test --workspace --test sam_local
fi
