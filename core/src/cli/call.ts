import type { Command } from 'commander';
import { qiaoError } from '../errors.ts';
import { adminCall, serverOptions, withServerOptions } from './client.ts';
import { collect, parseSets } from './options.ts';

/**
 * `qiao call <action>`: any admin action, the core's or a plugin's (e.g. `rtxBridge.status`), the same
 * way the admin API's `POST /api/admin/call/<action>` runs it. Every admin function is reachable from here
 * before any console page exists for it.
 */
export function register(program: Command): void {
  withServerOptions(
    program
      .command('call <action>')
      .description("run any admin action, the core's or a plugin's, and print its JSON answer")
      .option('--params <json>', 'the parameters as one JSON object')
      .option('--set <key=value>', 'a parameter, repeatable; dotted keys nest; values parse as JSON when they can', collect, []),
  ).action(async (action: string, opts: { params?: string; set: string[]; url?: string; token?: string }) => {
    let params: Record<string, unknown> = {};
    if (opts.params !== undefined) {
      try {
        params = JSON.parse(opts.params) as Record<string, unknown>;
      } catch (err) {
        throw qiaoError('QIAO_BAD_REQUEST', `--params is not JSON: ${(err as Error).message}`, { field: 'params' });
      }
      if (!params || typeof params !== 'object' || Array.isArray(params)) throw qiaoError('QIAO_BAD_REQUEST', '--params must be a JSON object', { field: 'params' });
    }
    const answer = await adminCall<unknown>(action, { ...params, ...parseSets(opts.set) }, serverOptions(opts));
    console.log(JSON.stringify(answer, null, 2));
  });
}
