import type { Command } from 'commander';
import { generatePassword } from '../auth/password.ts';
import { adminCall, serverOptions, withServerOptions } from './client.ts';

interface AdminRow {
  account: string;
  displayName: string;
  role: string;
  enabled: boolean | number;
  mustChangePassword: boolean | number;
}

function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd());
}

/** `qiao admin …`: admin console accounts, through the running server or, when it is stopped, the database. */
export function register(program: Command): void {
  const admin = program.command('admin').description('admin console accounts: create, reset-password, list');

  withServerOptions(
    admin
      .command('create <account>')
      .description('create an admin account (a password is generated and printed when none is given)')
      .option('--password <password>', 'the password (8 characters or more)')
      .option('--role <role>', 'super or admin', 'admin')
      .option('--display-name <name>', 'the name shown in the console'),
  ).action(async (account: string, opts: { password?: string; role: string; displayName?: string; url?: string; token?: string }) => {
    const password = opts.password ?? generatePassword();
    const created = await adminCall<{ account: string; role: string }>(
      'system.admins.create',
      { account, password, role: opts.role, mustChangePassword: !opts.password, ...(opts.displayName ? { displayName: opts.displayName } : {}) },
      serverOptions(opts),
    );
    console.log(`created admin "${created.account}" (role ${created.role})`);
    if (!opts.password) console.log(`password: ${password}\nchange it after first login`);
  });

  withServerOptions(
    admin
      .command('reset-password <account>')
      .description('set a new password (generated and printed when none is given; the account must change it at next login) and sign the account out everywhere')
      .option('--password <password>', 'the new password (8 characters or more)'),
  ).action(async (account: string, opts: { password?: string; url?: string; token?: string }) => {
    const res = await adminCall<{ account: string; password?: string }>(
      'system.admins.resetPassword',
      { account, ...(opts.password ? { password: opts.password } : {}) },
      serverOptions(opts),
    );
    console.log(`password of admin "${res.account}" reset; its sessions are signed out`);
    if (res.password) console.log(`one-time password: ${res.password}\nchange it after first login`);
  });

  withServerOptions(admin.command('list').description('every admin account').option('--json', 'print the raw JSON answer')).action(
    async (opts: { json?: boolean; url?: string; token?: string }) => {
      const rows = await adminCall<AdminRow[]>('system.admins.list', {}, serverOptions(opts));
      if (opts.json) return console.log(JSON.stringify(rows, null, 2));
      printTable([
        ['ACCOUNT', 'ROLE', 'ENABLED', 'MUST CHANGE PASSWORD', 'NAME'],
        ...rows.map((r) => [r.account, r.role, r.enabled ? 'yes' : 'no', r.mustChangePassword ? 'yes' : 'no', r.displayName]),
      ]);
    },
  );
}
