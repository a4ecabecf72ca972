import fs from 'node:fs';
import path from 'node:path';
import type { QiaoApp } from '../app.ts';
import type { LicenceStatus } from './effective-licence.ts';
import { generateKeyPair, issueLicence, type IssueFields, type LicenceDocument } from './licence-document.ts';

/**
 * A licence signing rig for tests and vendors' test harnesses: a fresh key pair whose public half the core
 * is told to trust (`licenceTrustedKeyFiles`), so tests run on real signed licences rather than on faked
 * `licence.changed` events.
 *
 *   const rig = createLicenceRig(tmpDir);
 *   const app = await startQiao(loadConfig(process.env, { ..., licenceTrustedKeyFiles: [rig.trustedKeyFile] }));
 *   await rig.install(app, { features: ['message-audit'] });
 *   await rig.travelTo(app, new Date('2099-01-01'));   // the licence has expired: features []
 */
export interface LicenceRig {
  /** PEM public key file to put in `licenceTrustedKeyFiles`. */
  trustedKeyFile: string;
  privateKeyPem: string;
  issue(fields?: Partial<IssueFields>): LicenceDocument;
  /** Issues (defaults: 100 seats, one year, no features) and installs through `licence.install`. */
  install(app: QiaoApp, fields?: Partial<IssueFields>): Promise<LicenceStatus>;
  /** Moves the licence service's clock to `when` and re-checks; `null` goes back to real time. */
  travelTo(app: QiaoApp, when: Date | null): Promise<LicenceStatus>;
}

export function createLicenceRig(dir: string, name = 'test-rig'): LicenceRig {
  const pair = generateKeyPair();
  fs.mkdirSync(dir, { recursive: true });
  const trustedKeyFile = path.join(dir, `${name}.pub.pem`);
  fs.writeFileSync(trustedKeyFile, pair.publicKeyPem);
  const issue = (fields: Partial<IssueFields> = {}) =>
    issueLicence({ company: 'Test Company', seats: 100, expiresAt: new Date(Date.now() + 365 * 86_400_000), features: [], ...fields }, pair.privateKeyPem);
  return {
    trustedKeyFile,
    privateKeyPem: pair.privateKeyPem,
    issue,
    install: (app, fields) => app.broker.call<LicenceStatus, { document: LicenceDocument }>('licence.install', { document: issue(fields) }),
    async travelTo(app, when) {
      const service = app.broker.getLocalService('licence') as unknown as { now: () => Date } | undefined;
      if (!service) throw new Error('travelTo needs the licence service running in this process');
      service.now = when ? () => new Date(when) : () => new Date();
      return app.broker.call<LicenceStatus>('licence.check');
    },
  };
}
