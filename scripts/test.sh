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
reports=("$results/vitest.json")
# On linux-x64, every suite again under each other supported Node major (official binaries from
# the npm registry, fetched once into ~/.cache/ferrossh/node): the same .node file and built
# JavaScript under each. nodes.mjs prints none elsewhere, or with FERROSSH_TEST_OTHER_NODES=0 (a
# quick local run, or the GitHub workflow, whose matrix already runs this script under each Node).
nodes=$(node __test__/fixtures/nodes.mjs) || { echo "cannot provide the other Node versions for the suites" >&2; vitest_status=1; nodes=; reports+=("$results/other-nodes-unavailable.json"); }
for bin in $nodes; do
  v=$("$bin" -p process.versions.node)
  echo "== every vitest suite again, under Node $v"
  reports+=("$results/vitest-node$v.json")
  "$bin" node_modules/vitest/vitest.mjs run --reporter=default --reporter=json --outputFile="$results/vitest-node$v.json" "$@" || vitest_status=$?
done
node scripts/test-summary.mjs "$results/cargo.txt" "${reports[@]}"
[ "$cargo_status" -eq 0 ] && [ "$vitest_status" -eq 0 ]
