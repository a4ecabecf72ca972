/**
 * Messaging over the client API (issue 4), on each database, with the server in a child process
 * (`qiao start`) and every client a real @qiao/client SDK instance in this one:
 *
 * 1. 1:1 messages persisted and delivered over WebSocket: A sends text messages to B, N/2 one at a time
 *    (latency), then N with 16 in flight (throughput). A message counts as delivered when B's SDK hands it to
 *    the application: push, GET /v1/sync, `item` event. Send-to-deliver latency is from A's call to that event.
 * 2. Fan-out: one message to a 5,000-member group while 1,000 of its members are connected. Timed from the
 *    send call to the ack (committed: 5,000 inbox rows) and to the moment the last of the 1,000 clients has
 *    the message; repeated and the median round reported.
 *
 * Setup is not what is measured, so the people and their sessions are written into the database before the
 * server starts (1,000 scrypt logins would take most of a minute on a small machine); every request still
 * goes through `auth.authenticate`. `BENCH_1TO1`, `BENCH_MEMBERS`, `BENCH_ONLINE`, `BENCH_ROUNDS` change the sizes.
 */
import { randomBytes } from 'node:crypto';
import { QiaoClient, type StoredMessage, type SyncItem } from '@qiao/client';
import { CORE_MIGRATIONS } from '../../core/src/app.ts';
import { hashToken, newToken } from '../../core/src/auth/tokens.ts';
import { openDatabase } from '../../core/src/db/database.ts';
import { migrate } from '../../core/src/db/migrator.ts';
import { insertUsers } from '../../core/src/im/test-helpers.ts';
import { QiaoServer } from '../fault/qiao-server.ts';
import { benchDialects, fmt, percentile, withDatabase } from './support.ts';

const ONE_TO_ONE = Number(process.env.BENCH_1TO1 ?? 1000);
const MEMBERS = Number(process.env.BENCH_MEMBERS ?? 5000);
const ONLINE = Number(process.env.BENCH_ONLINE ?? 1000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const IN_FLIGHT = 16;

interface Figures {
  sequential: { perSecond: number; p50: number; p99: number };
  concurrent: { perSecond: number; p50: number; p99: number };
  fanout: { ack: number; first: number; p50: number; p99: number; last: number; rounds: number[] };
  connectSeconds: number;
}

/** People and a live session each, straight into a fresh database: tokens to hand to the clients. */
async function seed(url: string, count: number): Promise<Array<{ id: number; token: string }>> {
  const db = openDatabase(url);
  try {
    await migrate(db, 'core', CORE_MIGRATIONS);
    const ids = await insertUsers(db, count);
    const now = new Date();
    const expires = new Date(Date.now() + 7 * 86_400_000);
    const out = ids.map((id) => ({ id, token: newToken() }));
    for (let i = 0; i < out.length; i += 500) {
      const chunk = out.slice(i, i + 500);
      await db.transaction((t) =>
        db.sequelize.query(
          `INSERT INTO user_sessions (token_hash, user_id, device_type, device_id, device_name, ip, must_change_password, remote_wipe, created_at, last_seen_at, expires_at)
           VALUES ${chunk.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
          { replacements: chunk.flatMap((u) => [hashToken(u.token), u.id, 'web', `bench-${u.id}`, 'bench', '127.0.0.1', false, false, now, now, expires]), transaction: t },
        ),
      );
    }
    return out;
  } finally {
    await db.close();
  }
}

const sorted = (xs: number[]) => [...xs].sort((a, b) => a - b);

/** Sends `n` messages from `from` to `conv`, `parallel` at a time, timing each from send to `to`'s item event. */
async function oneToOne(from: QiaoClient, to: QiaoClient, conv: string, n: number, parallel: number, tag: string) {
  const started = new Map<string, number>();
  const latencies: number[] = [];
  let delivered = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((r) => (done = r));
  const off = to.on('item', (i: SyncItem) => {
    if (i.kind !== 'message') return;
    const t0 = started.get((i.data as StoredMessage).clientMsgId);
    if (t0 === undefined) return;
    latencies.push(performance.now() - t0);
    if (++delivered === n) done();
  });
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < n) {
        const id = `${tag}-${next++}`;
        started.set(id, performance.now());
        await from.messages.send(conv, { type: 'text', body: { text: `benchmark message ${id}` }, clientMsgId: id });
      }
    }),
  );
  await all;
  const seconds = (performance.now() - t0) / 1000;
  off();
  const s = sorted(latencies);
  return { perSecond: n / seconds, p50: percentile(s, 50), p99: percentile(s, 99) };
}

async function run(url: string): Promise<Figures> {
  const people = await seed(url, MEMBERS);
  const server = await QiaoServer.create(url);
  await server.start();
  const clients: QiaoClient[] = [];
  try {
    const client = (token: string) => {
      const c = new QiaoClient({ baseUrl: server.base, token, syncPageSize: 200 });
      clients.push(c);
      return c;
    };
    // 1:1
    const [a, b] = [client(people[0].token), client(people[1].token)];
    await Promise.all([a.connect(), b.connect()]);
    const conv = (await a.conversations.create({ type: 'single', members: [people[1].id] })).id;
    await oneToOne(a, b, conv, 200, 1, 'warm');
    const sequential = await oneToOne(a, b, conv, Math.ceil(ONE_TO_ONE / 2), 1, 'seq');
    const concurrent = await oneToOne(a, b, conv, ONE_TO_ONE, IN_FLIGHT, 'par');
    a.disconnect();
    b.disconnect();

    // Fan-out: the sender is a member who is not one of the connected ones.
    const [sender, ...members] = people;
    const group = await server.admin<{ id: string }>('POST', '/im/groups', { name: 'everyone', members: people.map((m) => m.id), owner: sender.id });
    const senderClient = client(sender.token);
    const online = members.slice(0, ONLINE).map((m) => client(m.token));
    const t0 = performance.now();
    for (let i = 0; i < online.length; i += 50) await Promise.all(online.slice(i, i + 50).map((c) => c.connect()));
    await Promise.all(online.map((c) => c.catchUp()));
    const connectSeconds = (performance.now() - t0) / 1000;

    const rounds: Figures['fanout'][] = [];
    for (let r = 0; r < ROUNDS + 1; r++) {
      const clientMsgId = `fan-${r}-${randomBytes(3).toString('hex')}`;
      const arrivals: number[] = [];
      let resolve: () => void = () => undefined;
      const everyone = new Promise<void>((res) => (resolve = res));
      const offs = online.map((c) =>
        c.on('item', (i) => {
          if (i.kind === 'message' && (i.data as StoredMessage).clientMsgId === clientMsgId) {
            arrivals.push(performance.now() - start);
            if (arrivals.length === online.length) resolve();
          }
        }),
      );
      const start = performance.now();
      await senderClient.messages.send(group.id, { type: 'text', body: { text: 'to everyone' }, clientMsgId });
      const ack = performance.now() - start;
      await everyone;
      offs.forEach((off) => off());
      const s = sorted(arrivals);
      // Round 0 warms the server up (JIT, statement caches) and is not counted.
      if (r > 0) rounds.push({ ack, first: s[0], p50: percentile(s, 50), p99: percentile(s, 99), last: s[s.length - 1], rounds: [] });
    }
    const median = sorted(rounds.map((x) => x.last))[Math.floor(rounds.length / 2)];
    const mid = rounds.find((x) => x.last === median)!;
    return { sequential, concurrent, fanout: { ...mid, rounds: rounds.map((x) => x.last) }, connectSeconds };
  } finally {
    clients.forEach((c) => c.disconnect());
    await server.remove();
  }
}

const results = new Map<string, Figures>();
for (const dialect of await benchDialects()) {
  console.log(`\n-- ${dialect}`);
  const f = await withDatabase(dialect, (db) => run(db.url));
  results.set(dialect, f);
  console.log(`1:1, one at a time     ${fmt(f.sequential.perSecond, 0)} msg/s   send→deliver p50 ${fmt(f.sequential.p50)} ms, p99 ${fmt(f.sequential.p99)} ms`);
  console.log(`1:1, ${IN_FLIGHT} in flight      ${fmt(f.concurrent.perSecond, 0)} msg/s   send→deliver p50 ${fmt(f.concurrent.p50)} ms, p99 ${fmt(f.concurrent.p99)} ms`);
  console.log(`connect ${ONLINE} clients   ${fmt(f.connectSeconds, 2)} s (socket, auth, first catch-up)`);
  console.log(
    `fan-out to ${MEMBERS} (${ONLINE} online): ack ${fmt(f.fanout.ack)} ms, first ${fmt(f.fanout.first)} ms, p50 ${fmt(f.fanout.p50)} ms, p99 ${fmt(f.fanout.p99)} ms, ` +
      `all ${fmt(f.fanout.last)} ms (rounds: ${f.fanout.rounds.map((x) => fmt(x, 0)).join(', ')} ms)`,
  );
  console.log(
    `ratios: ${IN_FLIGHT} in flight / one at a time ${fmt(f.concurrent.perSecond / f.sequential.perSecond, 2)}×; ` +
      `fan-out all / ack ${fmt(f.fanout.last / f.fanout.ack, 2)}×; per online member ${fmt((f.fanout.last * 1000) / ONLINE, 0)} µs`,
  );
}
const s = results.get('sqlite');
const p = results.get('postgres');
if (s && p) {
  console.log('\n-- PostgreSQL / SQLite');
  console.log(`1:1 throughput ${fmt(p.concurrent.perSecond / s.concurrent.perSecond, 2)}×, sequential p50 latency ${fmt(p.sequential.p50 / s.sequential.p50, 2)}×, fan-out ack ${fmt(p.fanout.ack / s.fanout.ack, 2)}×, fan-out all ${fmt(p.fanout.last / s.fanout.last, 2)}×`);
}
process.exit(0);
