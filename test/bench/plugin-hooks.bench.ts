/**
 * What plugin isolation costs: sequential `im.send` throughput and latency with no plugin, and with one
 * plugin whose beforeMessageStored hook runs in its own process; and how fast a plugin that was off catches
 * up on the durable log.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startQiao, type QiaoApp } from '../../core/src/app.ts';
import { loadConfig } from '../../core/src/config.ts';
import { insertUser } from '../../core/src/im/test-helpers.ts';
import { createLicenceRig } from '../../core/src/licence/licence-rig.ts';
import { FIXTURES } from '../../core/src/plugin-host/test-kit.ts';
import { benchDialects, fmt, percentile, withDatabase } from './support.ts';

const N = Number(process.env.BENCH_MESSAGES ?? 2000);
const KEYWORD = 'com.qiao.test.keyword';

async function start(url: string, withPlugin: boolean): Promise<{ app: QiaoApp; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qiao-bench-'));
  const rig = createLicenceRig(dir);
  fs.mkdirSync(path.join(dir, 'data'));
  fs.writeFileSync(path.join(dir, 'data', 'licence.json'), JSON.stringify(rig.issue({ features: ['test-keyword'] })));
  const pluginsFile = path.join(dir, 'plugins.json');
  fs.writeFileSync(pluginsFile, JSON.stringify({ plugins: withPlugin ? [{ source: path.join(FIXTURES, 'keyword'), enabled: true }] : [] }));
  const app = await startQiao(
    loadConfig({}, { dataDir: path.join(dir, 'data'), databaseUrl: url, logLevel: false, pluginsFile, services: ['core'], licenceTrustedKeyFiles: [rig.trustedKeyFile] }),
  );
  return { app, dir };
}

async function sendAll(app: QiaoApp, tag: string): Promise<{ perSecond: number; p50: number; p99: number }> {
  const a = await insertUser(app.db!);
  const b = await insertUser(app.db!);
  const conv = await app.broker.call<{ id: string }, object>('im.conversations.create', { type: 'single', members: [a, b], createdBy: a });
  const latencies: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const s = performance.now();
    await app.broker.call('im.send', { conversationId: conv.id, senderId: a, clientMsgId: `${tag}-${i}`, type: 'text', body: { text: `message ${i}` } });
    latencies.push(performance.now() - s);
  }
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((x, y) => x - y);
  return { perSecond: N / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function waitSeen(app: QiaoApp, count: number): Promise<void> {
  for (;;) {
    const seen = await app.broker.call<number[]>('keyword.seen').catch(() => []);
    if (seen.length >= count) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const dialect of await benchDialects()) {
  const plain = await withDatabase(dialect, async (db) => {
    const { app, dir } = await start(db.url, false);
    try {
      return await sendAll(app, 'plain');
    } finally {
      await app.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  const hooked = await withDatabase(dialect, async (db) => {
    const { app, dir } = await start(db.url, true);
    try {
      const sent = await sendAll(app, 'hooked');
      // Catch-up: switch the plugin off, commit N more, switch it on and time until it has consumed all 2N.
      await waitSeen(app, N);
      await app.broker.call('plugins.disable', { id: KEYWORD });
      const more = await sendAll(app, 'while-off');
      void more;
      const t0 = performance.now();
      await app.broker.call('plugins.enable', { id: KEYWORD });
      await waitSeen(app, 2 * N);
      const catchUp = (performance.now() - t0) / 1000;
      return { ...sent, catchUpPerSecond: N / catchUp };
    } finally {
      await app.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
  console.log(`[${dialect}] ${N} sequential sends`);
  console.log(`  no plugin           ${fmt(plain.perSecond, 0)} msg/s   p50 ${fmt(plain.p50, 2)} ms   p99 ${fmt(plain.p99, 2)} ms`);
  console.log(`  1 hook (own process) ${fmt(hooked.perSecond, 0)} msg/s   p50 ${fmt(hooked.p50, 2)} ms   p99 ${fmt(hooked.p99, 2)} ms`);
  console.log(`  ratio hooked/plain  ${fmt(hooked.perSecond / plain.perSecond, 2)}× throughput, +${fmt(hooked.p50 - plain.p50, 2)} ms p50`);
  console.log(`  plugin catch-up     ${fmt(hooked.catchUpPerSecond, 0)} events/s (durable log, one cursor commit per event, incl. start)`);
}
