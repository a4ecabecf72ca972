import { cgiError, type ErrcodeName } from './errcodes.ts';

/**
 * Field readers for decrypted request JSON and query strings. Youdu callers send `null` or `""` for
 * fields they do not set, and GET callers send numbers as text: both are accepted everywhere.
 */
type P = Record<string, unknown>;

export const absent = (v: unknown) => v === undefined || v === null || v === '';

export function optString(p: P, name: string, bad: ErrcodeName, max = 10_000): string | undefined {
  const v = p[name];
  if (absent(v)) return undefined;
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string') throw cgiError(bad, `${name} must be a string`);
  if ([...v].length > max) throw cgiError(bad, `${name} is longer than ${max} characters`);
  return v;
}

export function reqString(p: P, name: string, missing: ErrcodeName, bad: ErrcodeName, max = 10_000): string {
  const v = optString(p, name, bad, max);
  if (v === undefined) throw cgiError(missing, `${name} is missing`);
  return v;
}

export function optInt(p: P, name: string, bad: ErrcodeName, range: { min?: number; max?: number } = {}): number | undefined {
  let v = p[name];
  if (absent(v)) return undefined;
  if (typeof v === 'string' && /^-?\d{1,15}$/.test(v.trim())) v = Number(v.trim());
  if (typeof v !== 'number' || !Number.isInteger(v)) throw cgiError(bad, `${name} must be an integer`);
  if (range.min !== undefined && v < range.min) throw cgiError(bad, `${name} must be at least ${range.min}`);
  if (range.max !== undefined && v > range.max) throw cgiError(bad, `${name} must be at most ${range.max}`);
  return v;
}

export function reqInt(p: P, name: string, missing: ErrcodeName, bad: ErrcodeName, range: { min?: number; max?: number } = {}): number {
  const v = optInt(p, name, bad, range);
  if (v === undefined) throw cgiError(missing, `${name} is missing`);
  return v;
}

export function optBool(p: P, name: string, bad: ErrcodeName = 'ERRCODE_INVALID_REQUEST'): boolean | undefined {
  const v = p[name];
  if (absent(v)) return undefined;
  if (v === true || v === 1 || v === 'true' || v === '1') return true;
  if (v === false || v === 0 || v === 'false' || v === '0') return false;
  throw cgiError(bad, `${name} must be true or false`);
}

/** `"a|b|c"` (Youdu's toUser / toDept) or a JSON array. */
export function pipeList(p: P, name: string, bad: ErrcodeName): string[] {
  const v = p[name];
  if (absent(v)) return [];
  if (Array.isArray(v)) return v.map((x) => String(x).trim()).filter(Boolean);
  if (typeof v === 'number') return [String(v)];
  if (typeof v !== 'string') throw cgiError(bad, `${name} must be a "|"-separated string`);
  return v.split('|').map((s) => s.trim()).filter(Boolean);
}

export function stringArray(p: P, name: string, missing: ErrcodeName, bad: ErrcodeName, max: number, over: ErrcodeName): string[] {
  const v = p[name];
  if (absent(v)) throw cgiError(missing, `${name} is missing`);
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string' || x === '')) throw cgiError(bad, `${name} must be an array of non-empty strings`);
  if (v.length > max) throw cgiError(over, `${name} lists ${v.length}; at most ${max}`);
  return v as string[];
}

export function intArray(v: unknown, name: string, bad: ErrcodeName): number[] {
  if (!Array.isArray(v)) throw cgiError(bad, `${name} must be an array of integers`);
  return v.map((x, i) => {
    const n = typeof x === 'string' && /^\d{1,10}$/.test(x) ? Number(x) : x;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw cgiError(bad, `${name}[${i}] must be an integer`);
    return n;
  });
}

export function obj(p: P, name: string, bad: ErrcodeName): P | undefined {
  const v = p[name];
  if (absent(v)) return undefined;
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw cgiError(bad, `${name} must be an object`);
  return v as P;
}
