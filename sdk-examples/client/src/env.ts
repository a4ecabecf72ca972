import { fileURLToPath } from 'node:url';
import type { AppCredentials } from './client.ts';

/**
 * App credentials from the environment, for running an example by hand:
 * YOUDU_BASE_URL (http://qiao:7080), YOUDU_BUIN, YOUDU_APP_ID, YOUDU_AES_KEY, YOUDU_CALLBACK_TOKEN.
 */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): AppCredentials & { callbackToken: string } {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`set ${k} (see the example's README)`);
    return v;
  };
  return {
    baseUrl: need('YOUDU_BASE_URL'),
    buin: Number(need('YOUDU_BUIN')),
    appId: need('YOUDU_APP_ID'),
    encodingAesKey: need('YOUDU_AES_KEY'),
    callbackToken: env.YOUDU_CALLBACK_TOKEN ?? '',
  };
}

/** True when `importMetaUrl`'s file is the one node was started with (run by hand, not imported). */
export function isMain(importMetaUrl: string): boolean {
  return process.argv[1] !== undefined && fileURLToPath(importMetaUrl) === process.argv[1];
}
