import type { Dialect } from '../db/database.ts';
import type { ColumnKind } from './schema.ts';

/**
 * Values travel through a backup in one neutral JSON form, whatever dialect they came from: booleans as
 * booleans, timestamps as ISO-8601 strings, JSON columns as JSON values, binary as base64.
 */
export function encodeValue(kind: ColumnKind, value: unknown, dialect: Dialect): unknown {
  if (value === null || value === undefined) return null;
  switch (kind) {
    case 'boolean':
      if (value === true || value === 1 || value === '1' || value === 't' || value === 'true') return true;
      if (value === false || value === 0 || value === '0' || value === 'f' || value === 'false') return false;
      return value;
    case 'datetime': {
      const d = value instanceof Date ? value : new Date(String(value));
      return Number.isNaN(d.getTime()) ? String(value) : d.toISOString();
    }
    case 'date':
      return value instanceof Date ? value.toISOString().slice(0, 10) : String(value);
    case 'json':
      // PostgreSQL hands JSON back parsed; SQLite keeps the text.
      if (dialect === 'sqlite' && typeof value === 'string') {
        try {
          return JSON.parse(value);
        } catch {
          return value;
        }
      }
      return value;
    case 'binary':
      return Buffer.isBuffer(value) ? value.toString('base64') : Buffer.from(String(value)).toString('base64');
    case 'integer':
    case 'number':
      if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
      return value;
    case 'array':
      return value;
    default:
      if (Buffer.isBuffer(value)) return value.toString('utf8');
      if (value instanceof Date) return value.toISOString();
      return value;
  }
}

/** PostgreSQL array literal text (`{"a","b"}`) for an array value; PostgreSQL casts it to the column's type. */
function pgArrayLiteral(value: unknown[]): string {
  const item = (v: unknown): string => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v)) return pgArrayLiteral(v);
    const s = typeof v === 'object' ? JSON.stringify(v) : String(v);
    return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
  };
  return `{${value.map(item).join(',')}}`;
}

/**
 * Turns a neutral value (recorded with `sourceKind`) into a replacement for a column of `targetKind` in the
 * target dialect. Sequelize then formats Dates, booleans and Buffers the way that dialect stores them.
 */
export function decodeValue(sourceKind: ColumnKind, targetKind: ColumnKind, value: unknown, dialect: Dialect): unknown {
  if (value === null || value === undefined) return null;
  const structured = sourceKind === 'json' || sourceKind === 'array';
  switch (targetKind) {
    case 'boolean':
      return typeof value === 'boolean' ? value : value === 1 || value === '1' || value === 't' || value === 'true';
    case 'datetime': {
      if (value instanceof Date) return value;
      const d = new Date(String(value));
      return Number.isNaN(d.getTime()) ? value : d;
    }
    case 'json':
      return structured || typeof value !== 'string' ? JSON.stringify(value) : value;
    case 'binary':
      return sourceKind === 'binary' ? Buffer.from(String(value), 'base64') : Buffer.from(String(value));
    case 'array':
      if (dialect === 'postgres' && Array.isArray(value)) return pgArrayLiteral(value);
      return structured ? JSON.stringify(value) : value;
    case 'string':
      return structured || (typeof value === 'object' && value !== null) ? JSON.stringify(value) : value;
    default:
      return typeof value === 'object' ? JSON.stringify(value) : value;
  }
}
