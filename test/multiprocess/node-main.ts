/**
 * One Qiao process of the multi-process test: starts the services named in QIAO_SERVICES on the
 * transporter in TRANSPORTER, adds the test fixture named in QIAO_MP_FIXTURE (`store` or `probe`),
 * reports `{ ready, nodeID }` to its parent over IPC and stops cleanly on SIGTERM.
 */
import { startQiao } from '../../core/src/app.ts';
import { loadConfig } from '../../core/src/config.ts';
import { probeFixture, storeFixture } from './fixtures.ts';

try {
  const app = await startQiao(loadConfig(process.env));
  const fixture = process.env.QIAO_MP_FIXTURE;
  if (fixture === 'store') {
    if (!app.db) throw new Error('the store fixture needs a process that owns storage');
    app.broker.createService(storeFixture(app.db));
  } else if (fixture === 'probe') {
    app.broker.createService(probeFixture());
  }
  let stopping = false;
  process.on('SIGTERM', () => {
    if (stopping) return;
    stopping = true;
    app.stop().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`stop failed: ${err.stack ?? err.message}`);
        process.exit(1);
      },
    );
  });
  // The fixture services start asynchronously on a running broker; report ready only once they serve.
  await app.broker.waitForServices(fixture === 'store' ? ['mp-store'] : fixture === 'probe' ? ['mp-probe'] : [], 10_000, 20);
  process.send?.({ ready: true, nodeID: app.broker.nodeID });
} catch (err) {
  console.error(`node-main failed to start: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
}
