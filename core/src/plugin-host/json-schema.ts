import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

// One Ajv for manifests and settings; `useDefaults` fills settings defaults in place.
const ajv = new Ajv({ allErrors: false, useDefaults: true, strict: false });
(addFormats as unknown as (a: Ajv) => void)(ajv);

export function compileSchema(schema: object): ValidateFunction {
  return ajv.compile(schema);
}

/** `settings.smtp.port: must be <= 65535` — the first error with the offending field as a dotted path. */
export function firstError(errors: ErrorObject[] | null | undefined, root: string): string {
  const e = errors?.[0];
  if (!e) return `${root}: invalid`;
  return `${fieldOf(e, root)}: ${e.message ?? 'invalid'}`;
}

export function fieldOf(e: ErrorObject, root: string): string {
  const parts = e.instancePath.split('/').filter(Boolean).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  if (e.keyword === 'required') parts.push(String((e.params as { missingProperty: string }).missingProperty));
  if (e.keyword === 'additionalProperties') parts.push(String((e.params as { additionalProperty: string }).additionalProperty));
  return [root, ...parts].join('.');
}
