#!/usr/bin/env bash
# The whole test suite, from a fresh clone: install what is missing, build,
# lint, then every test (kernel tests need root and skip with a reason otherwise).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
npm run lint --silent
npm test --silent
