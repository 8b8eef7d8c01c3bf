// Adds up the Rust and vitest results into one closing line: "tests: N passed, N failed".
import { existsSync, readFileSync } from 'node:fs'

const [cargoOut, vitestJson] = process.argv.slice(2)
let passed = 0
let failed = 0
let skipped = 0
for (const m of readFileSync(cargoOut, 'utf8').matchAll(/test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored/g)) {
  passed += Number(m[1])
  failed += Number(m[2])
  skipped += Number(m[3])
}
if (existsSync(vitestJson)) {
  const v = JSON.parse(readFileSync(vitestJson, 'utf8'))
  passed += v.numPassedTests
  failed += v.numFailedTests + (v.numTotalTestSuites > 0 && v.numFailedTestSuites ? 0 : 0)
  skipped += v.numPendingTests + v.numTodoTests
  if (v.numTotalTests === 0) failed += 1 // a run that executed nothing is a failure
} else {
  failed += 1
}
console.log(`tests: ${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
