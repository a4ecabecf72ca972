import type { PluginManifest } from '@qiao/plugin-api';
import { compileSchema, fieldOf } from './json-schema.ts';

export interface SettingsCheck {
  /** The settings with schema defaults filled in (a copy; the input is untouched). */
  value: Record<string, unknown>;
  error: { field: string; message: string } | null;
}

export function checkSettings(manifest: PluginManifest, settings: unknown): SettingsCheck {
  const value = structuredClone((settings ?? {}) as Record<string, unknown>);
  if (!manifest.settingsSchema) return { value, error: null };
  const validate = compileSchema(manifest.settingsSchema);
  if (validate(value)) return { value, error: null };
  const e = validate.errors![0];
  return { value, error: { field: fieldOf(e, 'settings'), message: e.message ?? 'invalid' } };
}
