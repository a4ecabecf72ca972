import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/**
 * The local CLI token: whoever can read `<dataDir>/cli.token` already owns the installation's files, so the
 * admin API treats that token as the super-admin `local-cli`. A fresh one is written on every start.
 */
export const CLI_TOKEN_FILE = 'cli.token';

export const LOCAL_CLI_ADMIN = Object.freeze({ id: 0, account: 'local-cli', role: 'super' as const });

export function cliTokenPath(dataDir: string): string {
  return path.join(dataDir, CLI_TOKEN_FILE);
}

/** Writes a new token with mode 0600, replacing any old file atomically (readers never see half a token). */
export function writeCliToken(dataDir: string): string {
  const token = randomBytes(32).toString('base64url');
  fs.mkdirSync(dataDir, { recursive: true });
  const file = cliTokenPath(dataDir);
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, token, { mode: 0o600 });
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  return token;
}

export function readCliToken(dataDir: string): string | null {
  try {
    return fs.readFileSync(cliTokenPath(dataDir), 'utf8').trim() || null;
  } catch {
    return null;
  }
}

/** Removes the file only while it still holds our token (another process may have started since). */
export function removeCliToken(dataDir: string, token: string): void {
  if (readCliToken(dataDir) === token) fs.rmSync(cliTokenPath(dataDir), { force: true });
}

export function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
