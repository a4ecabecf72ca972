import { daysLeft, stateAt, type VerifiedLicence } from './licence-document.ts';

/**
 * What the core runs on, given what was found on disk and the clock. Pure, so every rule here (trial,
 * expiry, fallback on a bad file) is decided in one place and testable without waiting for time to pass.
 */

export const TRIAL_SEATS = 50;
export const TRIAL_DAYS = 14;

export type LicenceStatusValue = 'trial' | 'valid' | 'expired' | 'invalid';

export interface EffectiveLicence {
  status: LicenceStatusValue;
  company: string;
  seats: number;
  features: string[];
  issuedAt: string;
  expiresAt: string;
  daysLeft: number;
  reason?: string;
  source: 'file' | 'trial';
}

/** The payload of `licence.status` and of the `licence.changed` event. */
export interface LicenceStatus extends EffectiveLicence {
  seatsUsed: number;
}

export type LicenceFileOutcome =
  | { kind: 'none' }
  | { kind: 'invalid'; problem: string }
  | { kind: 'verified'; verified: VerifiedLicence };

export interface EvaluationInput {
  file: string;
  outcome: LicenceFileOutcome;
  /** When the installation was first started; the trial runs from here. */
  installedAt: Date;
  /** The installation's company (null before first-start bootstrap has run). */
  company: { name: string; buin: number } | null;
  fallbackCompanyName: string;
  now: Date;
}

export function effectiveLicence(input: EvaluationInput): EffectiveLicence {
  const { file, outcome, installedAt, company, now } = input;
  const companyName = company?.name ?? input.fallbackCompanyName;

  const trialEnds = new Date(installedAt.getTime() + TRIAL_DAYS * 86_400_000);
  const trialOver = now.getTime() >= trialEnds.getTime();
  // An unusable licence file falls back to the trial terms rather than to nothing: a typo in a renewal must
  // not lock a company out of its IM, and the trial is already what an unlicensed core is allowed to do.
  const trial = (status: LicenceStatusValue, reason?: string): EffectiveLicence => ({
    status,
    company: companyName,
    seats: TRIAL_SEATS,
    features: [],
    issuedAt: installedAt.toISOString(),
    expiresAt: trialEnds.toISOString(),
    daysLeft: daysLeft(trialEnds, now),
    ...(reason ? { reason } : {}),
    source: 'trial',
  });

  if (outcome.kind === 'none') {
    return trialOver
      ? trial('expired', `the ${TRIAL_DAYS}-day trial ended on ${trialEnds.toISOString()}; install a licence to turn licensed features back on`)
      : trial('trial');
  }
  if (outcome.kind === 'invalid') return trial('invalid', `${file}: ${outcome.problem}`);

  const { verified } = outcome;
  const { licence } = verified;
  if (licence.buin !== undefined && company && company.buin !== licence.buin) {
    return trial('invalid', `${file}: licence ${licence.id} is for company number ${licence.buin}, this installation is ${company.buin}`);
  }
  const base = {
    company: licence.company,
    seats: licence.seats,
    issuedAt: verified.issuedAt.toISOString(),
    expiresAt: verified.expiresAt.toISOString(),
    daysLeft: daysLeft(verified.expiresAt, now),
    source: 'file' as const,
  };
  if (stateAt(verified, now) === 'expired') {
    // Seats stay as licensed so nobody is locked out; only the paid-for features stop.
    return {
      ...base,
      status: 'expired',
      features: [],
      reason: `licence ${licence.id} expired on ${verified.expiresAt.toISOString()}; licensed features are off until a renewed licence is installed`,
    };
  }
  return { ...base, status: 'valid', features: [...licence.features].sort() };
}

/** Two results that compare equal here are the same licence as far as anyone listening is concerned. */
export function changeKey(e: EffectiveLicence): string {
  return JSON.stringify([e.status, e.company, e.seats, e.features, e.issuedAt, e.expiresAt, e.reason ?? null, e.source]);
}
