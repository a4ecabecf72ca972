import fs from 'node:fs';
import type { Command } from 'commander';
import { qiaoError } from '../errors.ts';
import type { PluginView } from '../plugin-host/plugins.service.ts';
import { adminCall } from './client.ts';
import { collect, parseSets } from './options.ts';

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

function printView(v: PluginView): void {
  console.log(`${v.id} ${v.version ?? ''} — ${v.status} (${v.reason}); process ${v.state}${v.pid ? ` pid ${v.pid}` : ''}`);
}


export function register(program: Command): void {
  const plugin = program.command('plugin').description('list, enable, disable, configure, install and uninstall plugins (live)');
  const json = (cmd: Command) => cmd.option('--json', 'print the raw JSON answer');

  json(plugin.command('list').description('every installed plugin with its status and why')).action(async (opts: { json?: boolean }) => {
    const res = await adminCall<{ plugins: PluginView[]; fileError: string | null }>('plugins.list', {});
    if (opts.json) return console.log(JSON.stringify(res, null, 2));
    if (res.fileError) console.error(`warning: ${res.fileError}`);
    if (res.plugins.length === 0) return console.log('no plugins installed');
    printTable([
      ['ID', 'VERSION', 'STATUS', 'PROCESS', 'REASON'],
      ...res.plugins.map((p) => [p.id, p.version ?? '-', p.status, p.pid ? `${p.state} (${p.pid})` : p.state, p.reason]),
    ]);
  });

  json(plugin.command('show <id>').description('manifest, settings and status of one plugin')).action(async (id: string) => {
    console.log(JSON.stringify(await adminCall('plugins.get', { id }), null, 2));
  });

  for (const [name, action, what] of [
    ['enable', 'plugins.enable', 'turn a plugin on (needs its licence feature and valid settings)'],
    ['disable', 'plugins.disable', 'turn a plugin off'],
    ['restart', 'plugins.restart', 'restart a plugin process'],
  ] as const) {
    json(plugin.command(`${name} <id>`).description(what)).action(async (id: string, opts: { json?: boolean }) => {
      const v = await adminCall<PluginView>(action, { id });
      if (opts.json) console.log(JSON.stringify(v, null, 2));
      else printView(v);
    });
  }

  json(
    plugin
      .command('configure <id>')
      .description('replace a plugin’s settings (validated against its schema; nothing changes if invalid)')
      .option('--set <key=value>', 'a setting, repeatable; dotted keys nest', collect, [])
      .option('--file <settings.json>', 'settings from a JSON file'),
  ).action(async (id: string, opts: { set: string[]; file?: string; json?: boolean }) => {
    let settings: Record<string, unknown> = {};
    if (opts.file) {
      try {
        settings = JSON.parse(fs.readFileSync(opts.file, 'utf8')) as Record<string, unknown>;
      } catch (err) {
        throw qiaoError('QIAO_BAD_REQUEST', `${opts.file}: ${(err as Error).message}`, { field: 'file' });
      }
    }
    settings = { ...settings, ...parseSets(opts.set) };
    const v = await adminCall<PluginView>('plugins.configure', { id, settings });
    if (opts.json) console.log(JSON.stringify(v, null, 2));
    else printView(v);
  });

  json(plugin.command('install <source>').description('install from a folder, a .tgz or an npm package name (installed disabled)')).action(
    async (source: string, opts: { json?: boolean }) => {
      const v = await adminCall<PluginView>('plugins.install', { source });
      if (opts.json) console.log(JSON.stringify(v, null, 2));
      else printView(v);
    },
  );

  plugin
    .command('uninstall <id>')
    .description('stop and remove a plugin; --purge also drops its tables and cursors')
    .option('--purge', 'revert its migrations and forget its cursors')
    .action(async (id: string, opts: { purge?: boolean }) => {
      const r = await adminCall<{ id: string; purged: boolean }>('plugins.uninstall', { id, purge: Boolean(opts.purge) });
      console.log(`${r.id} uninstalled${r.purged ? ' and purged' : ''}`);
    });
}
