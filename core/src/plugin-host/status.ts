import semver from 'semver';
import type { LoadedManifest } from './manifest.ts';

/** Rocket.Chat-style status values: each says why a plugin is (not) running. */
export type PluginStatus =
  | 'enabled'
  | 'disabled'
  | 'licence-disabled'
  | 'settings-invalid'
  | 'incompatible'
  | 'error-disabled'
  | 'invalid';

export interface StatusInput {
  loaded: LoadedManifest | null;
  loadError: string | null;
  enabled: boolean;
  features: ReadonlySet<string>;
  settingsError: string | null;
  errorDisabled: string | null;
  pluginApiVersion: string;
}

/** The first reason that applies wins, in the order an admin would fix them. */
export function evaluateStatus(s: StatusInput): { status: PluginStatus; reason: string } {
  if (!s.loaded) return { status: 'invalid', reason: s.loadError ?? 'manifest could not be loaded' };
  const m = s.loaded.manifest;
  if (!semver.satisfies(s.pluginApiVersion, m.pluginApi)) {
    return { status: 'incompatible', reason: `needs plugin API ${m.pluginApi}; this core provides ${s.pluginApiVersion}` };
  }
  if (!s.enabled) return { status: 'disabled', reason: 'disabled by an admin' };
  if (m.licenceFeature && !s.features.has(m.licenceFeature)) {
    return { status: 'licence-disabled', reason: `the licence does not include feature "${m.licenceFeature}"` };
  }
  if (s.settingsError) return { status: 'settings-invalid', reason: s.settingsError };
  if (s.errorDisabled) return { status: 'error-disabled', reason: s.errorDisabled };
  return { status: 'enabled', reason: 'running as configured' };
}
