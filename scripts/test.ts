// The README's test command: runs `bun test`, then prints the line CI reads,
// `N passed, N failed`, last. Extra arguments go to `bun test` (default: ./test, so
// the llama.cpp tree's own test files under native/deps are never collected).
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const report = join(mkdtempSync(join(tmpdir(), "selftune-junit-")), "junit.xml");
const proc = Bun.spawn(["bun", "test", "--timeout=300000", "--reporter=junit", `--reporter-outfile=${report}`, ...(process.argv.length > 2 ? process.argv.slice(2) : ["./test"])], { stdio: ["inherit", "inherit", "inherit"] });
const code = await proc.exited;

let passed = 0;
let failed = 0;
try {
  const xml = readFileSync(report, "utf8");
  // One <testcase> per test; failures hold a <failure> or <error> child.
  for (const m of xml.matchAll(/<testcase\b[^>]*?(\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const body = m[2] ?? "";
    if (/<skipped/.test(body)) continue;
    if (/<(failure|error)\b/.test(body)) failed++;
    else passed++;
  }
} catch {
  failed++; // no report: the runner itself failed
}
if (code !== 0 && failed === 0) failed = 1; // e.g. an error outside any test
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
