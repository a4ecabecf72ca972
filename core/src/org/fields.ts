/**
 * The limits and shapes of every org text field, in one place: the broker actions' param schemas and the
 * importers (XML, Excel, backup) check against the same rules, so a value refused in one path is refused
 * in all of them, with the field named.
 */

export const GENDERS = ['male', 'female', 'unknown'] as const;
export type Gender = (typeof GENDERS)[number];
export const AUTH_TYPES = ['password', 'external'] as const;
export type AuthType = (typeof AUTH_TYPES)[number];
export const USER_STATUSES = ['active', 'disabled', 'resigned'] as const;
export type UserStatus = (typeof USER_STATUSES)[number];

export const LIMITS = {
  account: 64,
  name: 100,
  mobile: 64,
  phone: 64,
  shortNumber: 32,
  email: 200,
  position: 100,
  departmentName: 100,
  alias: 100,
  description: 500,
  source: 32,
  externalId: 200,
  customValue: 500,
} as const;

/** Letters (any script), digits and `. _ @ -`: what RTX and Youdu accept as login names. */
export const ACCOUNT_PATTERN = /^[\p{L}\p{N}._@-]+$/u;
/** Control characters have no place in a directory and PostgreSQL refuses NUL outright. */
const CONTROL = /[\u0000-\u001f\u007f]/;
const EMAIL = /^[^\s@]+@[^\s@]+$/;
export const WEIGHT_RANGE = { min: -1_000_000_000, max: 1_000_000_000 } as const;
export const SORT_RANGE = WEIGHT_RANGE;

/** Moleculer param schema for a free text field of at most `max` characters, no control characters. */
export function textParam(max: number, opts: { optional?: boolean; nullable?: boolean; min?: number } = {}) {
  return {
    type: 'string',
    min: opts.min ?? 0,
    max,
    pattern: /^[^\u0000-\u001f\u007f]*$/,
    messages: { stringPattern: "The '{field}' field must not contain control characters." },
    optional: opts.optional ?? false,
    nullable: opts.nullable ?? false,
  } as const;
}

export const idParam = { type: 'number', integer: true, positive: true, convert: true } as const;
export const accountParam = {
  type: 'string',
  min: 1,
  max: LIMITS.account,
  pattern: ACCOUNT_PATTERN,
  messages: { stringPattern: "The 'account' field may hold only letters, digits and . _ @ -" },
} as const;
export const weightParam = { type: 'number', integer: true, min: WEIGHT_RANGE.min, max: WEIGHT_RANGE.max, convert: true } as const;

/** One problem with one field; `field` is a dotted path the way the action params name it. */
export interface FieldProblem {
  field: string;
  message: string;
}

export function checkText(field: string, value: unknown, max: number, required = false): FieldProblem | null {
  if (value === undefined || value === null || value === '') {
    return required ? { field, message: `${field} is required` } : null;
  }
  if (typeof value !== 'string') return { field, message: `${field} must be text` };
  if ([...value].length > max) return { field, message: `${field} is longer than ${max} characters` };
  if (CONTROL.test(value)) return { field, message: `${field} must not contain control characters` };
  return null;
}

export function checkAccount(value: unknown, field = 'account'): FieldProblem | null {
  const p = checkText(field, value, LIMITS.account, true);
  if (p) return p;
  if (!ACCOUNT_PATTERN.test(value as string)) return { field, message: `${field} may hold only letters, digits and . _ @ - (got "${String(value).slice(0, 80)}")` };
  return null;
}

export function checkEmail(value: unknown, field = 'email'): FieldProblem | null {
  const p = checkText(field, value, LIMITS.email);
  if (p || value === undefined || value === null || value === '') return p;
  return EMAIL.test(value as string) ? null : { field, message: `${field} is not an e-mail address` };
}

export function checkInteger(field: string, value: unknown, range: { min: number; max: number }): FieldProblem | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'number' || !Number.isInteger(value)) return { field, message: `${field} must be a whole number` };
  if (value < range.min || value > range.max) return { field, message: `${field} must be between ${range.min} and ${range.max}` };
  return null;
}

/** Accepts the spellings the importers meet: RTX's 0/1, Chinese 男/女, English words and letters. */
export function parseGender(value: unknown): Gender | null | undefined {
  if (value === undefined) return undefined;
  if (value === null || value === '') return null;
  const v = String(value).trim().toLowerCase();
  if (['male', 'm', '0', '男'].includes(v)) return 'male';
  if (['female', 'f', '1', '女'].includes(v)) return 'female';
  if (['unknown', '2', '未知'].includes(v)) return 'unknown';
  return undefined;
}

/** The directory fields of a user that admins and importers set. */
export interface UserFields {
  name: string;
  gender: Gender | null;
  mobile: string | null;
  phone: string | null;
  shortNumber: string | null;
  email: string | null;
  authType: AuthType;
}

/** Checks the profile fields present in `input` (absent ones are left alone). */
export function checkUserFields(input: Partial<Record<keyof UserFields, unknown>>, prefix = ''): FieldProblem[] {
  const out: Array<FieldProblem | null> = [];
  const f = (name: string) => `${prefix}${name}`;
  if ('name' in input) out.push(checkText(f('name'), input.name, LIMITS.name, true));
  if ('mobile' in input) out.push(checkText(f('mobile'), input.mobile, LIMITS.mobile));
  if ('phone' in input) out.push(checkText(f('phone'), input.phone, LIMITS.phone));
  if ('shortNumber' in input) out.push(checkText(f('shortNumber'), input.shortNumber, LIMITS.shortNumber));
  if ('email' in input) out.push(checkEmail(input.email, f('email')));
  if ('gender' in input && input.gender !== null && !GENDERS.includes(input.gender as Gender)) {
    out.push({ field: f('gender'), message: `${f('gender')} must be one of ${GENDERS.join(', ')}` });
  }
  if ('authType' in input && !AUTH_TYPES.includes(input.authType as AuthType)) {
    out.push({ field: f('authType'), message: `${f('authType')} must be one of ${AUTH_TYPES.join(', ')}` });
  }
  return out.filter((p): p is FieldProblem => p !== null);
}

/** Empty text is stored as NULL so "no phone" has one spelling. */
export function blankToNull<T>(value: T | '' | undefined | null): T | null {
  return value === undefined || value === '' || value === null ? null : value;
}
