import type { Command } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import { startQiao, type QiaoApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { describeError } from '../errors.ts';

/** A connection URL fit to print: the password, if any, becomes `***`. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url.replace(/:[^:@/]*@/, ':***@');
  }
}

function describeStorage(databaseUrl: string): string {
  if (databaseUrl.startsWith('sqlite:')) return `SQLite ${databaseUrl.slice('sqlite:'.length) || ':memory:'}`;
  return `PostgreSQL ${maskUrl(databaseUrl)}`;
}

async function localAddress(app: QiaoApp, service: string): Promise<string | null> {
  if (!app.broker.getLocalService(service)) return null;
  return (await app.broker.call<{ url: string }, object>(`${service}.address`, {})).url;
}

async function banner(app: QiaoApp): Promise<string> {
  const { config } = app;
  const gateway = await localAddress(app, 'gateway');
  const admin = await localAddress(app, 'admin-api');
  const company = app.bootstrap?.company;
  const rows: Array<[string, string | null]> = [
    ['company', company ? `${company.name} (buin ${company.buin})` : null],
    ['gateway', gateway],
    ['admin', admin ? `${admin}  (web console in a later release; API under /api/admin)` : null],
    ['storage', describeStorage(config.databaseUrl)],
    ['transporter', config.transporter ? maskUrl(config.transporter) : 'none (single process)'],
    ['services', app.broker.services.map((s) => s.name).filter((n) => !n.startsWith('$')).join(', ')],
    ['node', app.broker.nodeID],
  ];
  const lines = [`Qiao (桥) ${pkg.version} is running`];
  for (const [label, value] of rows) if (value) lines.push(`  ${label.padEnd(13)}${value}`);
  const first = app.bootstrap?.superAdmin;
  if (first) {
    lines.push(
      '',
      `  First start: super-admin account "${first.account}", one-time password: ${first.password}`,
      '  Log in with it (admin console or `qiao admin …`) and change it after first login; it is not shown again.',
    );
  }
  lines.push('', 'Press Ctrl+C to stop.');
  return lines.join('\n');
}

/** Signals stop the whole app (broker and storage) once; a second signal gives up waiting. */
function stopOnSignals(app: QiaoApp): void {
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) process.exit(1);
      stopping = true;
      console.log(`${signal}: stopping Qiao…`);
      app.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(`qiao: stop failed: ${describeError(err).message}`);
          process.exit(1);
        },
      );
    });
  }
}

/** `qiao start`: the platform in this process, with the service groups asked for. */
export function register(program: Command): void {
  program
    .command('start')
    .description('start Qiao: gateway (7080), admin API (7003) and the core services, on SQLite under data/ unless DATABASE_URL says otherwise')
    .option('--services <list>', 'what this process runs: all, core, gateway, admin or service names, comma-separated (default: QIAO_SERVICES or all)')
    .action(async (opts: { services?: string }) => {
      let app: QiaoApp;
      try {
        const services = opts.services?.split(',').map((s) => s.trim()).filter(Boolean);
        app = await startQiao(loadConfig(process.env, services?.length ? { services } : {}));
      } catch (err) {
        const e = describeError(err);
        console.error(`qiao: cannot start: ${e.message}`);
        process.exit(1);
      }
      stopOnSignals(app);
      console.log(await banner(app));
    });
}
