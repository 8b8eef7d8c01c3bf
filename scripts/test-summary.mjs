// Adds up the Rust and vitest results into one closing line: "tests: N passed, N failed".
// Arguments: cargo's output, then one vitest JSON report per run (one per Node version); a
// report that is missing (its run died before writing it) counts as a failure.
import { existsSync, readFileSync } from 'node:fs'

const [cargoOut, ...vitestJsons] = process.argv.slice(2)
let passed = 0
let failed = 0
let skipped = 0
for (const m of readFileSync(cargoOut, 'utf8').matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
  passed += Number(m[1])
  failed += Number(m[2])
  skipped += Number(m[3])
}
if (vitestJsons.length === 0) failed += 1
for (const vitestJson of vitestJsons) tally(vitestJson)

function tally(vitestJson) {
  if (!existsSync(vitestJson)) {
    failed += 1
    return
  }
  const v = JSON.parse(readFileSync(vitestJson, 'utf8'))
  passed += v.numPassedTests
  failed += v.numFailedTests
  skipped += v.numPendingTests + v.numTodoTests
  // a file that failed outside its tests (a beforeAll that threw, an import error) leaves its
  // tests unrun, reported as skipped: they count as failed, and the file at least once
  for (const file of v.testResults ?? []) {
    if (file.status !== 'failed') continue
    const unrun = (file.assertionResults ?? []).filter((a) => a.status !== 'passed' && a.status !== 'failed').length
    const failedHere = (file.assertionResults ?? []).filter((a) => a.status === 'failed').length
    if (failedHere > 0 && unrun === 0) continue
    skipped -= unrun
    failed += Math.max(unrun, failedHere > 0 ? 0 : 1)
  }
  if (v.numTotalTests === 0) failed += 1 // a run that executed nothing is a failure
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
