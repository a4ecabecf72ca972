import fs from 'node:fs';
import path from 'node:path';
import { compileSchema, firstError } from './json-schema.ts';

/** One line of `plugins.json`: where the plugin comes from and what the admin chose for it. */
export interface PluginEntry {
  /** A folder (relative to the project root or absolute) or an installed package name. */
  source: string;
  enabled: boolean;
  settings?: Record<string, unknown>;
}

export interface PluginsFile {
  plugins: PluginEntry[];
}

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['plugins'],
  properties: {
    $schema: { type: 'string' },
    plugins: {
      type: 'array',
      maxItems: 1000,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['source', 'enabled'],
        properties: {
          source: { type: 'string', minLength: 1, maxLength: 1000 },
          enabled: { type: 'boolean' },
          settings: { type: 'object' },
        },
      },
    },
  },
};
const validate = compileSchema(SCHEMA);

/** Reads plugins.json; a missing file is an empty list, anything malformed throws naming the file. */
export function readPluginsFile(file: string): PluginsFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { plugins: [] };
    throw new Error(`${file}: cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file}: not valid JSON (${(err as Error).message})`);
  }
  if (!validate(data)) throw new Error(`${file}: ${firstError(validate.errors, 'plugins.json')}`);
  const parsed = data as PluginsFile;
  const seen = new Set<string>();
  for (const [i, p] of parsed.plugins.entries()) {
    if (seen.has(p.source)) throw new Error(`${file}: plugins[${i}].source "${p.source}" is listed twice`);
    seen.add(p.source);
  }
  return parsed;
}

/** Written to a temp file and renamed, so a crash mid-write never leaves a half file behind. */
export function writePluginsFile(file: string, content: PluginsFile): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(content, null, 2)}\n`);
  fs.renameSync(tmp, file);
}
