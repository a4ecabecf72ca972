import moleculer, { type BrokerOptions } from 'moleculer';
import type { QiaoConfig } from './config.ts';

/** One Moleculer broker per process; with a transporter, every process's broker joins the same cluster. */
export function createBroker(config: QiaoConfig, extra: Partial<BrokerOptions> = {}): moleculer.ServiceBroker {
  return new moleculer.ServiceBroker({
    namespace: process.env.QIAO_NAMESPACE ?? 'qiao',
    nodeID: config.nodeId,
    transporter: (config.transporter ?? undefined) as BrokerOptions['transporter'],
    logger:
      config.logLevel === false
        ? false
        : { type: 'Console', options: { level: config.logLevel, formatter: 'short', colors: process.stdout.isTTY } },
    requestTimeout: 30_000,
    // No blind retries: a timed-out call may have committed. Callers that retry carry an idempotency key
    // (a message's client id), so the retry belongs to them.
    retryPolicy: { enabled: false },
    registry: { strategy: 'RoundRobin', preferLocal: true },
    // The broker's own signal handler exits before storage is closed; `qiao start` installs one that does both.
    skipProcessEventRegistration: true,
    ...extra,
  });
}
