// Runs on whatever Node the machine has (even an old one) before `npm start` / `npm test`, so that the
// quick start is one command: it installs the workspace when node_modules is missing or older than the lockfile.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const marker = path.join(root, 'node_modules', '.package-lock.json');
const lock = path.join(root, 'package-lock.json');
const pinnedNode = path.join(root, 'node_modules', 'node', 'package.json');

function mtime(file) {
  try { return fs.statSync(file).mtimeMs; } catch { return 0; }
}

const stale = !fs.existsSync(pinnedNode) || mtime(marker) === 0 || mtime(lock) > mtime(marker);
if (stale) {
  console.log('[qiao] installing dependencies (first run or lockfile changed)…');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const args = fs.existsSync(lock) ? ['ci', '--no-audit', '--no-fund'] : ['install', '--no-audit', '--no-fund'];
  const r = spawnSync(npm, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
