/**
 * `npm run bench`: runs every test/bench/*.bench.ts in turn (or those named on the command line) and lets
 * each print its figures. Results worth keeping go into docs/benchmarks.md with the date and machine.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const benches = fs
  .readdirSync(dir)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => wanted.length === 0 || wanted.some((w) => f.includes(w)))
  .sort();

console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString()}`);
let failed = 0;
for (const b of benches) {
  console.log(`\n=== ${b}`);
  const r = spawnSync(process.execPath, [path.join(dir, b)], { stdio: 'inherit', env: { ...process.env, QIAO_LOG_LEVEL: 'off' } });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
