import fs from 'node:fs';
import path from 'node:path';
import type { PluginManifest } from '@qiao/plugin-api';
import semver from 'semver';
import { compileSchema, firstError } from './json-schema.ts';

const ACTION_PATTERN = '^[A-Za-z0-9$_-]+(\\.[A-Za-z0-9$_*-]+)*$';

const MANIFEST_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['id', 'name', 'version', 'main', 'pluginApi'],
  properties: {
    $schema: { type: 'string' },
    id: { type: 'string', pattern: '^[a-z][a-z0-9-]*(\\.[a-z0-9][a-z0-9-]*)+$', maxLength: 200 },
    name: { type: 'string', minLength: 1, maxLength: 100 },
    version: { type: 'string', minLength: 1, maxLength: 50 },
    description: { type: 'string', maxLength: 2000 },
    main: { type: 'string', minLength: 1, maxLength: 300 },
    pluginApi: { type: 'string', minLength: 1, maxLength: 100 },
    licenceFeature: { type: 'string', pattern: '^[a-z0-9][a-z0-9.-]*$', maxLength: 100 },
    settingsSchema: { type: 'object' },
    permissions: {
      type: 'object',
      additionalProperties: false,
      properties: {
        actions: { type: 'array', items: { type: 'string', pattern: ACTION_PATTERN }, maxItems: 500 },
        events: { type: 'array', items: { type: 'string', pattern: ACTION_PATTERN }, maxItems: 500 },
        emits: { type: 'array', items: { type: 'string', pattern: ACTION_PATTERN }, maxItems: 500 },
        database: { type: 'boolean' },
      },
    },
    hooks: {
      type: 'object',
      additionalProperties: false,
      properties: {
        beforeMessageStored: {
          type: 'object',
          additionalProperties: false,
          properties: {
            timeoutMs: { type: 'integer', minimum: 1, maximum: 10000 },
            failPolicy: { enum: ['open', 'closed'] },
          },
        },
        afterMessageStored: { type: 'object', additionalProperties: false },
        onOrgChanged: { type: 'object', additionalProperties: false },
      },
    },
    migrations: { type: 'string', minLength: 1, maxLength: 300 },
    resources: {
      type: 'object',
      additionalProperties: false,
      properties: { maxMemoryMb: { type: 'integer', minimum: 32, maximum: 65536 } },
    },
  },
} as const;

const validateShape = compileSchema(MANIFEST_SCHEMA);

export class ManifestError extends Error {
  readonly file: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.file = file;
  }
}

/** Stays inside the package folder: a manifest cannot point `main` or `migrations` at other files. */
function inside(dir: string, rel: string, field: string, file: string): string {
  const full = path.resolve(dir, rel);
  if (full !== dir && !full.startsWith(dir + path.sep)) throw new ManifestError(file, `${field} "${rel}" points outside the plugin folder`);
  return full;
}

export interface LoadedManifest {
  manifest: PluginManifest;
  dir: string;
  file: string;
  mainPath: string;
  migrationsDir: string | null;
}

/** Reads and validates `<dir>/plugin.json`; any problem throws a ManifestError naming the file. */
export function loadManifest(dir: string): LoadedManifest {
  const file = path.join(dir, 'plugin.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ManifestError(file, code === 'ENOENT' ? 'file not found' : `cannot be read (${code})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ManifestError(file, `not valid JSON (${(err as Error).message})`);
  }
  if (!validateShape(data)) throw new ManifestError(file, firstError(validateShape.errors, 'manifest'));
  const manifest = data as PluginManifest;
  if (!semver.valid(manifest.version)) throw new ManifestError(file, `version "${manifest.version}" is not semver`);
  if (!semver.validRange(manifest.pluginApi)) throw new ManifestError(file, `pluginApi "${manifest.pluginApi}" is not a semver range`);
  if (manifest.settingsSchema) {
    try {
      compileSchema(manifest.settingsSchema);
    } catch (err) {
      throw new ManifestError(file, `settingsSchema is not a valid JSON Schema (${(err as Error).message})`);
    }
  }
  const mainPath = inside(dir, manifest.main, 'main', file);
  if (!fs.existsSync(mainPath)) throw new ManifestError(file, `main "${manifest.main}" does not exist`);
  const migrationsDir = manifest.migrations ? inside(dir, manifest.migrations, 'migrations', file) : null;
  return { manifest, dir, file, mainPath, migrationsDir };
}

/** Whether `pattern` (`im.messages.*`, `sms.send`, `*`) covers the dotted `name`. */
export function matchesPattern(pattern: string, name: string): boolean {
  if (pattern === '*' || pattern === name) return true;
  if (pattern.endsWith('.*')) return name.startsWith(pattern.slice(0, -1));
  return false;
}

export function allowed(patterns: readonly string[] | undefined, name: string): boolean {
  return (patterns ?? []).some((p) => matchesPattern(p, name));
}
