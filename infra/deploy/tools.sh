# Sourced by the test command and infra/deploy/check.sh: installs cfn-lint,
# aws-sam-cli and cargo-lambda (with zig), pinned in infra/deploy/requirements.txt,
# into .venv-deploy (again when the pins change), and puts them first on PATH:
# cargo-lambda finds zig through `python3 -m ziglang`, so this venv's Python
# must come first.
deploy_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
deploy_venv="$deploy_root/.venv-deploy"
deploy_requirements="$deploy_root/infra/deploy/requirements.txt"
deploy_wanted="$(sha256sum "$deploy_requirements" | cut -d' ' -f1)"
if [ ! -x "$deploy_venv/bin/cargo-lambda" ] || [ "$(cat "$deploy_venv/.requirements.sha256" 2>/dev/null)" != "$deploy_wanted" ]; then
  printf '==> %s\n' "installing cfn-lint, aws-sam-cli and cargo-lambda (pinned in infra/deploy/requirements.txt) into .venv-deploy"
  python3 -m venv "$deploy_venv"
  "$deploy_venv/bin/pip" install --quiet --disable-pip-version-check --require-virtualenv -r "$deploy_requirements"
  echo "$deploy_wanted" > "$deploy_venv/.requirements.sha256"
fi
export PATH="$deploy_venv/bin:$PATH"
export SAM_CLI_TELEMETRY=0
