/**
 * RTX bridge (issue 6): relay throughput through emulator + agent + plugin, both ways, and the org sync of a
 * 100,000-person RTX organisation. Everything real: the core with the plugin in its own process, the RTX
 * emulator on loopback, the agent in this process with its journals fsynced on local disk.
 *
 *   npm run bench -- rtx-bridge
 *   BENCH_RTX_USERS=20000 BENCH_RTX_MESSAGES=500 npm run bench -- rtx-bridge
 *
 * Measured per database:
 * - Qiao → RTX, streaming: N messages sent with `im.send` (8 at a time) until the last is in the RTX user's inbox.
 * - Qiao → RTX, backlog drain: N messages queued while RTX is down (on the agent's disk), then RTX comes back.
 * - RTX → Qiao, streaming: N messages typed by an RTX user (emulator) until the last is committed in Qiao.
 * - Org sync: first import of the whole organisation; a delta of 1,000 changed people; an unchanged re-sync.
 */
import { addRtxUsers, quiet, startBridgeRig, type BridgeRig } from '../../bridge-rtx/plugin/test-kit.ts';
import { control } from '../../bridge-rtx/emulator/test-support.ts';
import { benchDialects, fmt, withDatabase } from './support.ts';

const USERS = Number(process.env.BENCH_RTX_USERS ?? 100_000);
const MESSAGES = Number(process.env.BENCH_RTX_MESSAGES ?? 2000);
const DEPARTMENTS = 500;

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 600_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function orgXml(users: number, departments: number): string {
  const per = Math.ceil(users / departments);
  const parts: string[] = ['<?xml version="1.0" encoding="utf-8"?><enterprise name="基准公司"><departments><department name="基准公司" describe="">'];
  let n = 0;
  for (let d = 0; d < departments && n < users; d++) {
    parts.push(`<department name="部门${d}" describe="">`);
    for (let i = 0; i < per && n < users; i++, n++) {
      parts.push(`<user uid="u${n}" name="员工${n}" email="u${n}@example.com" mobile="138${String(n).padStart(8, '0')}" rtxno="${10000 + n}" phone="" position="职员" gender="${n % 2}"/>`);
    }
    parts.push('</department>');
  }
  parts.push('</department></departments></enterprise>');
  return parts.join('');
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

async function relay(rig: BridgeRig): Promise<Record<string, string>> {
  await addRtxUsers(rig.rtx, [{ uid: 'zhangsan' }, { uid: 'lisi' }]);
  await rig.startAgent({ log: quiet });
  await rig.sync(true);
  const zs = await rig.userId('zhangsan');
  const ls = await rig.userId('lisi');
  await rig.call('rtxBridge.credentials.set', { userId: ls, password: 'lisi-pw' });
  const conv = (await rig.call<{ id: string }>('im.conversations.create', { type: 'single', members: [ls, zs], createdBy: ls })).id;
  // Read straight from the emulator's state: polling its HTTP inbox would cost more than what is measured.
  const inboxCount = async () => rig.rtx.state.inbox('zhangsan').ims.length;
  let sent = 0;
  const sendMany = async (n: number, prefix: string) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < n) {
          const i = next++;
          await rig.call('im.send', { conversationId: conv, senderId: ls, clientMsgId: `${prefix}-${i}`, type: 'text', body: { text: `${prefix} 消息 ${i}` } });
        }
      }),
    );
    sent += n;
  };

  // Reference: the core's own send rate here, in a conversation with no RTX people in it.
  const qiaoOnly = await Promise.all(['ref-a', 'ref-b'].map(async (account) => Number((await rig.call<{ id: number }>('org.users.create', { account, name: account })).id)));
  const refConv = (await rig.call<{ id: string }>('im.conversations.create', { type: 'single', members: qiaoOnly, createdBy: qiaoOnly[0] })).id;
  const reference = await timed(async () => {
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < MESSAGES) {
          const i = next++;
          await rig.call('im.send', { conversationId: refConv, senderId: qiaoOnly[0], clientMsgId: `ref-${i}`, type: 'text', body: { text: `参考 ${i}` } });
        }
      }),
    );
  });

  // Qiao → RTX while both are up.
  const stream = await timed(async () => {
    await sendMany(MESSAGES, 'stream');
    await until(async () => (await inboxCount()) >= sent, 'streamed messages in RTX');
  });

  // Qiao → RTX backlog: queued on the agent's disk while RTX is down, drained when it returns.
  await rig.rtx.down('refuse');
  await sendMany(MESSAGES, 'backlog');
  await until(async () => rig.agent!.status().stats.toRtxPending >= MESSAGES, 'the backlog on the agent');
  const drain = await timed(async () => {
    await rig.rtx.up();
    await until(async () => (await inboxCount()) >= sent, 'the backlog in RTX');
  });

  // RTX → Qiao: an RTX user types N messages.
  const counter = async () => (await rig.call<{ relay: { counters: Record<string, number> } }>('rtxBridge.status')).relay.counters['toQiao.messages'] ?? 0;
  const before = await counter();
  const inbound = await timed(async () => {
    for (let i = 0; i < MESSAGES; i++) await control(rig.rtx, 'POST', '/messages', { from: 'zhangsan', to: ['lisi'], text: `RTX 消息 ${i}` });
    await until(async () => (await counter()) >= before + MESSAGES, 'RTX messages in Qiao');
  });
  const rate = (ms: number) => `${fmt((MESSAGES * 1000) / ms, 0)} msg/s (${fmt(ms / 1000, 2)} s for ${MESSAGES})`;
  return {
    'reference: im.send ×8, no RTX people (core alone)': rate(reference.ms),
    'Qiao → RTX, streaming (im.send ×8 → inbox)': rate(stream.ms),
    'Qiao → RTX, backlog drain after RTX returns': rate(drain.ms),
    'RTX → Qiao, streaming (RTX client → committed)': rate(inbound.ms),
  };
}

async function orgSync(rig: BridgeRig): Promise<Record<string, string>> {
  const xml = orgXml(USERS, DEPARTMENTS);
  const load = await fetch(`${rig.rtx.controlUrl}/org.xml?mode=replace`, { method: 'PUT', body: xml });
  if (!load.ok) throw new Error(`loading the organisation into the emulator: ${await load.text()}`);
  await rig.startAgent({ log: quiet });
  // Linking starts a first sync by itself; the measured one is the same work (it joins or re-runs it).
  const first = await timed(() => rig.sync(true));
  if (first.value.status !== 'ok' || first.value.added !== USERS) throw new Error(`first sync: ${JSON.stringify(first.value).slice(0, 500)}`);
  for (let i = 0; i < 1000; i++) {
    const uid = `u${(i * 97) % USERS}`;
    if (i % 2) await control(rig.rtx, 'PATCH', `/users/${uid}`, { name: `改名${i}` });
    else await control(rig.rtx, 'PATCH', `/users/${uid}`, { departments: [`基准公司\\部门${(i * 7) % DEPARTMENTS}`] });
  }
  const delta = await timed(() => rig.sync());
  const unchanged = await timed(() => rig.sync());
  const rssMb = process.resourceUsage().maxRSS / 1024;
  return {
    [`first sync: ${USERS.toLocaleString('en')} people, ${DEPARTMENTS} departments`]: `${fmt(first.ms / 1000, 2)} s (${fmt((USERS * 1000) / first.ms, 0)} people/s)`,
    'delta sync: 1,000 people changed or moved': `${fmt(delta.ms / 1000, 2)} s (${delta.value.changed} changed, ${delta.value.moved} moved)`,
    'unchanged re-sync (export hash equal)': `${fmt(unchanged.ms / 1000, 2)} s (${unchanged.value.status})`,
    'peak RSS of the bench process (emulator + agent + core)': `${fmt(rssMb, 0)} MiB`,
  };
}

const results: Record<string, Record<string, string>> = {};
for (const dialect of await benchDialects()) {
  await withDatabase(dialect, async (db) => {
    const rig = await startBridgeRig({ databaseUrl: db.url, settings: { sync: { enabled: false } } });
    try {
      Object.assign((results[dialect] ??= {}), await relay(rig));
    } finally {
      await rig.stop();
    }
  });
  await withDatabase(dialect, async (db) => {
    const rig = await startBridgeRig({ databaseUrl: db.url, settings: { sync: { enabled: false, timeoutSeconds: 900 } } });
    try {
      Object.assign(results[dialect]!, await orgSync(rig));
    } finally {
      await rig.stop();
    }
  });
}
const dialects = Object.keys(results);
console.log(`\n| measure | ${dialects.join(' | ')} |\n| --- | ${dialects.map(() => '---').join(' | ')} |`);
for (const k of Object.keys(results[dialects[0]!]!)) console.log(`| ${k} | ${dialects.map((d) => results[d]![k]).join(' | ')} |`);
process.exit(0);
