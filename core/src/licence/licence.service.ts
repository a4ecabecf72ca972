import fs from 'node:fs/promises';
import type { Context, ServiceSchema } from 'moleculer';
import cron, { type ScheduledTask } from 'node-cron';
import { QueryTypes } from 'sequelize';
import type { Database } from '../db/database.ts';
import { qiaoError } from '../errors.ts';
import { adminAction, type ServiceDeps } from '../services.ts';
import { writeFileAtomically } from './atomic-write.ts';
import { changeKey, effectiveLicence, type EffectiveLicence, type LicenceFileOutcome, type LicenceStatus } from './effective-licence.ts';
import { loadTrustedKeys, stateAt, verifyLicence, type TrustedKey } from './licence-document.ts';

export type { LicenceStatus } from './effective-licence.ts';

const DEFAULT_CRON = '* * * * *';

async function readSetting<T>(db: Database, key: string): Promise<T | undefined> {
  const rows = await db.sequelize.query<{ value: unknown }>('SELECT value FROM system_settings WHERE key = ?', {
    replacements: [key],
    type: QueryTypes.SELECT,
  });
  if (rows.length === 0) return undefined;
  const v = rows[0].value;
  return (typeof v === 'string' && db.dialect === 'sqlite' ? JSON.parse(v) : v) as T;
}

/**
 * Holds the effective licence (file, trial, or the trial as fallback for an unusable file), re-evaluates it
 * on a schedule and on demand, and announces every change as `licence.changed`. Never needs a restart.
 */
export default function licenceService({ config, db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('licence service needs storage');
  const file = config.licenceFile;

  return {
    name: 'licence',

    actions: {
      status: adminAction({
        admin: true,
        rest: 'GET /licence',
        async handler(): Promise<LicenceStatus> {
          return this.currentStatus();
        },
      }),
      install: adminAction({
        admin: 'super',
        rest: 'PUT /licence',
        params: { document: { type: 'multi', rules: [{ type: 'object' }, { type: 'string', min: 1, max: 1_000_000 }] } },
        async handler(ctx: Context<{ document: object | string }>): Promise<LicenceStatus> {
          return this.serialised(() => this.install(ctx.params.document));
        },
      }),
      check: adminAction({
        admin: true,
        rest: 'POST /licence/check',
        async handler(): Promise<LicenceStatus> {
          await this.serialised(() => this.refresh(false));
          return this.currentStatus();
        },
      }),
      hasFeature: {
        params: { feature: { type: 'string', min: 1, max: 200 } },
        async handler(ctx: Context<{ feature: string }>): Promise<boolean> {
          const effective: EffectiveLicence = await this.effectiveNow();
          return effective.features.includes(ctx.params.feature);
        },
      },
      seats: {
        async handler(): Promise<{ seats: number; used: number; available: number }> {
          const effective: EffectiveLicence = await this.effectiveNow();
          const used: number = await this.seatsUsed();
          return { seats: effective.seats, used, available: Math.max(0, effective.seats - used) };
        },
      },
    },

    methods: {
      /** The clock every expiry decision uses; tests replace it to travel in time. */
      now(): Date {
        return new Date();
      },

      /** Runs licence re-evaluations one at a time, so the cron job, `check` and `install` never interleave. */
      serialised<T>(fn: () => Promise<T>): Promise<T> {
        const run: Promise<T> = this.queue.then(fn);
        this.queue = run.catch(() => undefined);
        return run;
      },

      trustedKeys(): TrustedKey[] {
        const { keys, problems } = loadTrustedKeys(config.licenceTrustedKeyFiles);
        const said = problems.join('\n');
        if (said && said !== this.keyProblems) for (const p of problems) this.logger.warn(`licence: ${p}`);
        this.keyProblems = said;
        return keys;
      },

      async readLicenceFile(keys: TrustedKey[]): Promise<LicenceFileOutcome> {
        let text: string;
        try {
          text = await fs.readFile(file, 'utf8');
        } catch (err) {
          const e = err as NodeJS.ErrnoException;
          if (e.code === 'ENOENT') return { kind: 'none' };
          return { kind: 'invalid', problem: `cannot be read (${e.code ?? e.message})` };
        }
        try {
          return { kind: 'verified', verified: verifyLicence(text, keys) };
        } catch (err) {
          return { kind: 'invalid', problem: (err as Error).message };
        }
      },

      /** Re-reads everything that can change under us: the licence file, the trusted keys, the install facts. */
      async load(): Promise<void> {
        const outcome: LicenceFileOutcome = await this.readLicenceFile(this.trustedKeys());
        const installed = await readSetting<string>(db, 'installed_at');
        const company = (await readSetting<{ name: string; buin: number }>(db, 'company')) ?? null;
        const installedAt = installed ? new Date(installed) : null;
        this.loaded = {
          outcome,
          // Before first-start bootstrap has recorded the install date, the trial counts from this start.
          installedAt: installedAt && !Number.isNaN(installedAt.getTime()) ? installedAt : this.startedAt,
          company,
        };
      },

      evaluate(): EffectiveLicence {
        return effectiveLicence({ file, ...this.loaded, fallbackCompanyName: config.companyName, now: this.now() });
      },

      /** The effective licence at this instant (expiry does not wait for the next cron tick). */
      async effectiveNow(): Promise<EffectiveLicence> {
        // The first evaluation can run before bootstrap has written the company; catch up once it has.
        if (!this.loaded || !this.loaded.company) await this.serialised(() => this.load());
        const effective = this.evaluate();
        await this.announceIfChanged(effective, false);
        return effective;
      },

      async currentStatus(): Promise<LicenceStatus> {
        const effective: EffectiveLicence = await this.effectiveNow();
        return { ...effective, seatsUsed: await this.seatsUsed() };
      },

      async seatsUsed(): Promise<number> {
        const [row] = await db.sequelize.query<{ n: number | string }>('SELECT COUNT(*) AS n FROM users WHERE authorised = ?', {
          replacements: [true],
          type: QueryTypes.SELECT,
        });
        return Number(row?.n ?? 0);
      },

      async refresh(force: boolean): Promise<EffectiveLicence> {
        await this.load();
        const effective = this.evaluate();
        await this.announceIfChanged(effective, force);
        return effective;
      },

      /** Logs a problem once (not every minute) and emits `licence.changed` when the result moved. */
      async announceIfChanged(effective: EffectiveLicence, force: boolean): Promise<void> {
        const key = changeKey(effective);
        if (key === this.lastKey && !force) return;
        const first = this.lastKey === null;
        this.lastKey = key;
        // Logged per change of status or problem, not per change of dates: on a first start the trial's
        // start moves from "now" to the recorded install date, which is not news.
        const said = `${effective.status} ${effective.reason ?? ''}`;
        if (said !== this.lastSaid || force) {
          this.lastSaid = said;
          if (effective.status === 'invalid' || effective.status === 'expired') {
            const where = effective.status === 'invalid' || effective.source === 'trial' ? '' : `${file}: `;
            this.logger.warn(`licence: ${where}${effective.reason}`);
          } else if (!first || force) {
            this.logger.info(`licence: now ${effective.status} for ${effective.company}, ${effective.seats} seats, features: ${effective.features.join(', ') || 'none'}`);
          }
        }
        const payload: LicenceStatus = { ...effective, seatsUsed: await this.seatsUsed() };
        await this.broker.emit('licence.changed', payload);
      },

      async install(document: object | string): Promise<LicenceStatus> {
        const verified = (() => {
          try {
            return verifyLicence(document, this.trustedKeys());
          } catch (err) {
            const e = err as Error & { data?: { field?: string } };
            throw qiaoError('QIAO_LICENCE_INVALID', `${e.message}; the current licence stays`, { field: e.data?.field ? `document.${e.data.field}` : 'document' });
          }
        })();
        const { licence } = verified;
        const company = (await readSetting<{ name: string; buin: number }>(db, 'company')) ?? null;
        if (licence.buin !== undefined && company && company.buin !== licence.buin) {
          throw qiaoError(
            'QIAO_LICENCE_INVALID',
            `licence ${licence.id} is for company number ${licence.buin}, this installation is ${company.buin}; the current licence stays`,
            { field: 'document.licence.buin' },
          );
        }
        if (stateAt(verified, this.now()) === 'expired') {
          throw qiaoError('QIAO_LICENCE_EXPIRED', `licence ${licence.id} expired on ${verified.expiresAt.toISOString()}; the current licence stays`, {
            field: 'document.licence.expiresAt',
          });
        }
        const text = typeof document === 'string' ? document : `${JSON.stringify(document, null, 2)}\n`;
        await writeFileAtomically(file, text);
        this.logger.info(`licence: installed ${licence.id} into ${file}`);
        const effective: EffectiveLicence = await this.refresh(true);
        return { ...effective, seatsUsed: await this.seatsUsed() };
      },
    },

    created() {
      this.queue = Promise.resolve();
      this.lastKey = null;
      this.lastSaid = null;
      this.keyProblems = '';
      this.loaded = null;
      this.task = null;
    },

    async started() {
      this.startedAt = this.now();
      await this.serialised(() => this.refresh(false));
      let expression = config.licenceCheckCron;
      if (!cron.validate(expression)) {
        this.logger.warn(`licence: QIAO_LICENCE_CHECK_CRON "${expression}" is not a cron expression; checking every minute instead`);
        expression = DEFAULT_CRON;
      }
      const task: ScheduledTask = cron.schedule(
        expression,
        () =>
          this.serialised(() => this.refresh(false)).catch((err: Error) => {
            // A database hiccup must not kill the schedule; the next tick tries again.
            this.logger.error(`licence: re-check failed: ${err.message}`);
          }),
        { name: `licence-check-${config.nodeId}`, noOverlap: true },
      );
      this.task = task;
    },

    async stopped() {
      const task = this.task as ScheduledTask | null;
      this.task = null;
      if (task) await task.destroy();
      await this.queue;
    },
  };
}
