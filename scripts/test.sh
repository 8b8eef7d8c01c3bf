#!/usr/bin/env bash
# `npm test`: builds the native binding (debug) and the TypeScript, checks the committed
# loader matches the Rust, then runs the Rust unit tests and every vitest suite, and ends
# with one summary line for both.
set -euo pipefail
cd "$(dirname "$0")/.."

npm run build:debug
if git rev-parse --git-dir >/dev/null 2>&1 && ! git diff --quiet -- index.js index.d.ts; then
  echo "index.js / index.d.ts differ from what napi build generates: commit the regenerated files" >&2
  git --no-pager diff --stat -- index.js index.d.ts >&2
  exit 1
fi
node scripts/build-ts.mjs
# every public export documented: typedoc treats a missing comment as an error
npx typedoc --logLevel Warn

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
cargo_status=0
cargo test -p ferrossh-core 2>&1 | tee "$results/cargo.txt" || cargo_status=$?
vitest_status=0
npx vitest run --reporter=default --reporter=json --outputFile="$results/vitest.json" "$@" || vitest_status=$?
node scripts/test-summary.mjs "$results/cargo.txt" "$results/vitest.json"
[ "$cargo_status" -eq 0 ] && [ "$vitest_status" -eq 0 ]
