import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/**
 * scrypt (memory-hard, in node:crypto) with N=2^15, r=8: 32 MiB and ~60 ms per hash on the reference
 * machine. Parameters travel inside the stored string so they can be raised without invalidating old hashes.
 */
const DEFAULTS = { N: 1 << 15, r: 8, p: 1, keylen: 32 };

function derive(password: string, salt: Buffer, o: { N: number; r: number; p: number; keylen: number }): Promise<Buffer> {
  const options: ScryptOptions = { N: o.N, r: o.r, p: o.p, maxmem: 256 * o.N * o.r + 1024 * 1024 };
  return new Promise((resolve, reject) => scrypt(password.normalize('NFC'), salt, o.keylen, options, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(password, salt, DEFAULTS);
  return `scrypt$${DEFAULTS.N}$${DEFAULTS.r}$${DEFAULTS.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const salt = Buffer.from(parts[4], 'base64');
  const expected = Buffer.from(parts[5], 'base64');
  if (!N || !r || !p || expected.length === 0) return false;
  const key = await derive(password, salt, { N, r, p, keylen: expected.length });
  return timingSafeEqual(key, expected);
}

/** A password a person can type from a terminal: 16 characters, no look-alikes. */
export function generatePassword(length = 16): string {
  const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789';
  const bytes = randomBytes(length);
  let out = '';
  for (const b of bytes) out += alphabet[b % alphabet.length];
  // Guarantee the classes the strong-password policy asks for.
  return `${out.slice(0, length - 3)}A7#`;
}

/** The strong-password rule admins switch on (Youdu's 高强度密码): 8–16 characters, all four classes. */
export const STRONG_POLICY = { min: 8, max: 16 } as const;
/** With the strong rule off, a password still has to be long enough not to be guessed in the lockout window. */
export const BASIC_POLICY = { min: 6, max: 128 } as const;

const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * Why `password` breaks the policy, or null when it is acceptable. One sentence, for the person choosing
 * it; the caller names the field.
 */
export function passwordProblem(password: string, strong: boolean): string | null {
  const length = [...password].length;
  if (CONTROL.test(password)) return 'must not contain control characters';
  if (!strong) {
    if (length < BASIC_POLICY.min) return `must be at least ${BASIC_POLICY.min} characters long`;
    if (length > BASIC_POLICY.max) return `must be at most ${BASIC_POLICY.max} characters long`;
    return null;
  }
  if (length < STRONG_POLICY.min || length > STRONG_POLICY.max) return `must be ${STRONG_POLICY.min}–${STRONG_POLICY.max} characters long (strong-password policy)`;
  const missing: string[] = [];
  if (!/[A-Z]/.test(password)) missing.push('an upper-case letter');
  if (!/[a-z]/.test(password)) missing.push('a lower-case letter');
  if (!/[0-9]/.test(password)) missing.push('a digit');
  if (!/[^A-Za-z0-9]/.test(password)) missing.push('a special character');
  return missing.length ? `must contain ${missing.join(', ')} (strong-password policy)` : null;
}
