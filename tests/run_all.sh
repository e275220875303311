#!/usr/bin/env bash
# Install everything the test suite needs on a fresh machine (root, Python 3.11, pip, apt), then
# run the linters, the type checker, the layer contracts and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."

apt_packages=(srecord stm32flash softhsm2)
missing=()
for pkg in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

python3 -m pip install --quiet --disable-pip-version-check -e '.[test]'

echo "== ruff";          ruff check .
echo "== mypy --strict"; mypy
echo "== import-linter"; lint-imports
echo "== pytest";        python3 -m pytest "$@"
