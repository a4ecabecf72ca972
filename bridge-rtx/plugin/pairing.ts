import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from './store.ts';

/**
 * Connection codes and agent credentials. An admin issues a code (single use, expires); the agent trades it
 * once for a credential `<agentId>.<secret>`; only the SHA-256 of either is stored. Pairing a new agent
 * revokes the previous one: a bridge has one agent, and a stolen old credential stops working.
 */

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789'; // no 0/O, 1/I: codes are read out and typed

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export function normaliseCode(code: string): string {
  return code.toUpperCase().replace(/[^A-Z0-9]/g, '');
}

function newCode(): string {
  const bytes = randomBytes(16);
  let out = '';
  for (let i = 0; i < 16; i++) out += ALPHABET[bytes[i]! % ALPHABET.length];
  // 16 symbols of 32 = 80 bits; shown as QIAO-XXXX-XXXX-XXXX-XXXX.
  return `QIAO-${out.match(/.{4}/g)!.join('-')}`;
}

export async function issueCode(store: Store, ttlMinutes: number): Promise<{ code: string; expiresAt: string }> {
  const code = newCode();
  const now = Date.now();
  const expires = now + ttlMinutes * 60_000;
  await store.execute('INSERT INTO rtx_bridge_codes (code_hash, created_at, expires_at) VALUES (?, ?, ?)', [sha256(normaliseCode(code)), now, expires]);
  // Expired and used codes are of no further use; keep the table small.
  await store.execute('DELETE FROM rtx_bridge_codes WHERE expires_at < ?', [now - 86_400_000]);
  return { code, expiresAt: new Date(expires).toISOString() };
}

export type PairOutcome = { ok: true; agentId: string; credential: string } | { ok: false; reason: string };

export async function exchangeCode(store: Store, code: string, name: string, address: string): Promise<PairOutcome> {
  const now = Date.now();
  const agentId = `agent-${randomBytes(6).toString('hex')}`;
  // Claimed with one conditional UPDATE: two agents racing with the same code cannot both win.
  // (Checked by reading back who claimed it: SQLite through Sequelize returns no rows from UPDATE … RETURNING.)
  const hash = sha256(normaliseCode(code));
  await store.execute('UPDATE rtx_bridge_codes SET used_at = ?, used_by = ? WHERE code_hash = ? AND used_at IS NULL AND expires_at >= ?', [now, agentId, hash, now]);
  const claimed = await store.query('SELECT code_hash FROM rtx_bridge_codes WHERE code_hash = ? AND used_by = ?', [hash, agentId]);
  if (!claimed.length) return { ok: false, reason: 'the connection code is unknown, expired or already used: issue a new one in the admin console' };
  const secret = randomBytes(32).toString('base64url');
  await store.execute('UPDATE rtx_bridge_agents SET revoked_at = ? WHERE revoked_at IS NULL', [now]);
  await store.execute('INSERT INTO rtx_bridge_agents (id, name, secret_hash, created_at, last_address) VALUES (?, ?, ?, ?, ?)', [
    agentId,
    name.slice(0, 200) || 'rtx-agent',
    sha256(secret),
    now,
    address.slice(0, 100),
  ]);
  return { ok: true, agentId, credential: secret };
}

export interface AgentRecord {
  id: string;
  name: string;
}

/** The agent a `Bearer <agentId>.<secret>` header names, or null. */
export async function authenticate(store: Store, header: string | undefined): Promise<AgentRecord | null> {
  const m = /^Bearer\s+([A-Za-z0-9-]{1,40})\.([A-Za-z0-9_-]{20,100})\s*$/.exec(header ?? '');
  if (!m) return null;
  const row = await store.one<{ id: string; name: string; secret_hash: string }>('SELECT id, name, secret_hash FROM rtx_bridge_agents WHERE id = ? AND revoked_at IS NULL', [m[1]]);
  if (!row) return null;
  const want = Buffer.from(row.secret_hash, 'hex');
  const got = Buffer.from(sha256(m[2]!), 'hex');
  return want.length === got.length && timingSafeEqual(want, got) ? { id: row.id, name: row.name } : null;
}

/** A credential made directly, for the agent embedded in this process (no code to type). */
export async function embeddedCredential(store: Store): Promise<{ agentId: string; credential: string }> {
  const now = Date.now();
  const agentId = 'agent-embedded';
  const secret = randomBytes(32).toString('base64url');
  await store.execute('UPDATE rtx_bridge_agents SET revoked_at = ? WHERE revoked_at IS NULL', [now]);
  await store.execute('DELETE FROM rtx_bridge_agents WHERE id = ?', [agentId]);
  await store.execute('INSERT INTO rtx_bridge_agents (id, name, secret_hash, created_at, last_address) VALUES (?, ?, ?, ?, ?)', [agentId, 'embedded agent', sha256(secret), now, '127.0.0.1']);
  return { agentId, credential: secret };
}
