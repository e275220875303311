#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine (root, Python 3.11, pip, apt), then
# run the linters, the type checker, the layer contracts and the whole test suite.
#
# Python packages come from requirements/test.lock (exact versions and hashes) into a virtual
# environment of their own (.venv, or the one already active), so what a fresh machine installs
# is what the last green run installed. Refresh the lock: see requirements/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(srecord stm32flash softhsm2 chromium gcc-arm-none-eabi curl)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # shellcheck disable=SC1091
    source .venv/bin/activate
fi
pip_install=(python -m pip install --quiet --disable-pip-version-check)
"${pip_install[@]}" --require-hashes -r requirements/test.lock
"${pip_install[@]}" --no-deps --no-build-isolation -e .

echo "== ruff";          ruff check .
echo "== mypy --strict"; mypy
echo "== import-linter"; lint-imports
echo "== pytest";        python -m pytest "$@"
