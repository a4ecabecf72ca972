import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { qiaoError } from '../errors.ts';
import { writeFileAtomically } from '../licence/atomic-write.ts';
import { daysLeft, generateKeyPair, issueLicence, loadTrustedKeys, stateAt, verifyLicence, type VerifiedLicence } from '../licence/licence-document.ts';

/**
 * `qiao licence keygen | issue | inspect | install`. keygen and issue are for vendors (and test rigs): they
 * need a private key and never touch a running core. inspect and install verify against the keys this core
 * trusts (core/keys/*.pub.pem plus QIAO_LICENCE_TRUSTED_KEYS).
 */

function positiveInt(value: string, option: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value))) {
    throw qiaoError('QIAO_VALIDATION', `${option} must be a positive whole number, got "${value}"`, { field: option.replace(/^--/, '') });
  }
  return Number(value);
}

function readText(file: string, what: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT') throw qiaoError('QIAO_NOT_FOUND', `${file}: ${what} does not exist`);
    throw qiaoError('QIAO_BAD_REQUEST', `${file}: cannot read ${what} (${e.code ?? e.message})`);
  }
}

/** Verifies a licence file against the trusted keys; an invalid one becomes `<file>: <problem>`. */
function verifyFile(file: string): VerifiedLicence {
  const resolved = path.resolve(file);
  const text = readText(resolved, 'licence file');
  const { keys, problems } = loadTrustedKeys(loadConfig(process.env).licenceTrustedKeyFiles);
  for (const p of problems) console.error(`qiao: warning: ${p}`);
  try {
    return verifyLicence(text, keys);
  } catch (err) {
    throw qiaoError('QIAO_LICENCE_INVALID', `${resolved}: ${(err as Error).message}`, { file: resolved });
  }
}

function summary(file: string, v: VerifiedLicence, now: Date): string {
  const { licence } = v;
  const state = stateAt(v, now);
  const status =
    state === 'expired'
      ? `expired since ${v.expiresAt.toISOString()} (licensed features are off while it is installed)`
      : `valid, ${daysLeft(v.expiresAt, now)} day(s) left`;
  const rows: [string, string][] = [
    ['file', file],
    ['status', status],
    ['licence', licence.id],
    ['company', licence.buin !== undefined ? `${licence.company} (company number ${licence.buin})` : licence.company],
    ['seats', String(licence.seats)],
    ['issued', v.issuedAt.toISOString()],
    ['expires', v.expiresAt.toISOString()],
    ['features', licence.features.length ? [...licence.features].sort().join(', ') : '(none: core features only)'],
    ['signed by', `${v.signedBy.name} (key ${v.signedBy.keyId}, ${v.signedBy.source})`],
  ];
  return rows.map(([k, val]) => `${k.padEnd(10)}${val}`).join('\n');
}

export function register(program: Command): void {
  const licence = program.command('licence').description('issue, inspect and install signed licences');

  licence
    .command('keygen')
    .description('create an Ed25519 key pair for signing licences (vendors only; keep the private key offline)')
    .requiredOption('--out <dir>', 'directory to write <name>.key.pem and <name>.pub.pem into')
    .option('--name <name>', 'file name prefix', 'licence-signing')
    .action((opts: { out: string; name: string }) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(opts.name)) {
        throw qiaoError('QIAO_VALIDATION', `--name must be letters, digits, ".", "_" or "-", got "${opts.name}"`, { field: 'name' });
      }
      const dir = path.resolve(opts.out);
      fs.mkdirSync(dir, { recursive: true });
      const privateFile = path.join(dir, `${opts.name}.key.pem`);
      const publicFile = path.join(dir, `${opts.name}.pub.pem`);
      for (const f of [privateFile, publicFile]) {
        if (fs.existsSync(f)) throw qiaoError('QIAO_CONFLICT', `${f} already exists; choose another --name or --out (keys are never overwritten)`);
      }
      const pair = generateKeyPair();
      fs.writeFileSync(privateFile, pair.privateKeyPem, { mode: 0o600, flag: 'wx' });
      fs.writeFileSync(publicFile, pair.publicKeyPem, { mode: 0o644, flag: 'wx' });
      console.log(`private key: ${privateFile} (mode 0600; keep it offline, it signs licences)`);
      console.log(`public key:  ${publicFile}`);
      console.log(`key id:      ${pair.keyId}`);
      console.log('A core trusts it once the .pub.pem is in core/keys/ or listed in QIAO_LICENCE_TRUSTED_KEYS.');
    });

  licence
    .command('issue')
    .description('sign a licence with a private key; prints the JSON unless --out is given')
    .requiredOption('--key <file>', 'Ed25519 private key (PEM)')
    .requiredOption('--company <name>', 'licensee company name')
    .requiredOption('--seats <n>', 'number of authorised accounts allowed')
    .requiredOption('--expires <date>', 'YYYY-MM-DD (end of that day, UTC) or an ISO 8601 date-time')
    .option('--features <list>', 'comma-separated feature keys, e.g. rtx-bridge,message-audit', '')
    .option('--issued <date>', 'YYYY-MM-DD or ISO 8601 date-time (default: now)')
    .option('--buin <n>', 'bind the licence to one installation by its company number')
    .option('--id <id>', 'licence id (default: generated)')
    .option('--out <file>', 'write the licence here instead of printing it')
    .action(async (opts: { key: string; company: string; seats: string; expires: string; features: string; issued?: string; buin?: string; id?: string; out?: string }) => {
      const privateKeyPem = readText(path.resolve(opts.key), 'private key file');
      const document = issueLicence(
        {
          id: opts.id,
          company: opts.company,
          seats: positiveInt(opts.seats, '--seats'),
          buin: opts.buin === undefined ? undefined : positiveInt(opts.buin, '--buin'),
          issuedAt: opts.issued,
          expiresAt: opts.expires,
          features: opts.features.split(',').map((f) => f.trim()).filter(Boolean),
        },
        privateKeyPem,
      );
      const text = `${JSON.stringify(document, null, 2)}\n`;
      if (!opts.out) {
        process.stdout.write(text);
        return;
      }
      const out = path.resolve(opts.out);
      await writeFileAtomically(out, text);
      console.log(`wrote licence ${document.licence.id} for ${document.licence.company} to ${out}`);
    });

  licence
    .command('inspect <file>')
    .description('verify a licence against the trusted keys and show what it grants')
    .option('--json', 'print the verified licence as JSON')
    .action((file: string, opts: { json?: boolean }) => {
      const resolved = path.resolve(file);
      const v = verifyFile(resolved);
      const now = new Date();
      if (opts.json) {
        const out = {
          file: resolved,
          status: stateAt(v, now),
          daysLeft: daysLeft(v.expiresAt, now),
          licence: v.licence,
          signedBy: { name: v.signedBy.name, keyId: v.signedBy.keyId, source: v.signedBy.source },
        };
        console.log(JSON.stringify(out, null, 2));
        return;
      }
      console.log(summary(resolved, v, now));
    });

  licence
    .command('install <file>')
    .description("verify a licence and make it this installation's licence (takes effect without a restart)")
    .action(async (file: string) => {
      const resolved = path.resolve(file);
      const v = verifyFile(resolved);
      if (stateAt(v, new Date()) === 'expired') {
        throw qiaoError('QIAO_LICENCE_EXPIRED', `${resolved}: licence ${v.licence.id} expired on ${v.expiresAt.toISOString()}; the current licence stays`);
      }
      const text = readText(resolved, 'licence file');
      const what = `licence ${v.licence.id} for ${v.licence.company} (${v.licence.seats} seats, until ${v.expiresAt.toISOString()})`;
      const adminCall = await loadAdminCall();
      if (adminCall) {
        // Through the server: it also checks the installation binding and applies the licence at once.
        const status = await adminCall<{ status: string; features: string[] }>('licence.install', { document: text });
        console.log(`installed ${what}; status ${status.status}, features: ${status.features.join(', ') || 'none'}`);
        return;
      }
      const config = loadConfig(process.env);
      // The file is the licence's only home: a running server's licence check re-reads it on its schedule,
      // so copying it into place is an install whether or not the server is up.
      await writeFileAtomically(config.licenceFile, text);
      console.log(`installed ${what} into ${config.licenceFile}`);
      console.log(`A running server applies it at its next licence check (schedule "${config.licenceCheckCron}"); a stopped one on start.`);
    });
}

type AdminCall = <T>(action: string, params: object) => Promise<T>;

/** The shared admin client (./client.ts) when this build has it; without it, install falls back to the file. */
async function loadAdminCall(): Promise<AdminCall | null> {
  const specifier = './client.ts';
  try {
    const mod = (await import(specifier)) as { adminCall?: AdminCall };
    return typeof mod.adminCall === 'function' ? mod.adminCall : null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && (err as Error).message.includes('client.ts')) return null;
    throw err;
  }
}
