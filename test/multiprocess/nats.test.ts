/**
 * The same services spread over several processes joined by NATS (issue 2, item 2): process B owns the
 * storage and runs system, licence, eventlog and im; process A runs only the gateway and owns no storage;
 * this test process joins as a third node with no Qiao services at all. A message whose `im.send` call
 * starts on A must be stored by B and its wake-up delivered to A and to this node; the record must then be
 * readable through `eventlog.read` and, once B has stopped, straight from the database B wrote.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type moleculer from 'moleculer';
import { QueryTypes } from 'sequelize';
import { createBroker } from '../../core/src/broker.ts';
import { loadConfig } from '../../core/src/config.ts';
import { openDatabase } from '../../core/src/db/database.ts';
import type { Conversation } from '../../core/src/im/conversations.ts';
import type { StoredMessage } from '../../core/src/im/messages.ts';
import { forEachDatabase } from '../support/databases.ts';

const NATS_URL = process.env.QIAO_TEST_NATS_URL || 'nats://127.0.0.1:4222';
const ENTRY = path.join(path.dirname(fileURLToPath(import.meta.url)), 'node-main.ts');

interface Child {
  name: string;
  nodeID: string;
  proc: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop: () => Promise<number | null>;
}

/** Starts node-main.ts on this Node (24) and resolves once it reports ready; rejects with its output if it dies. */
function startNode(name: string, env: Record<string, string>): Promise<Child> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `qiao-mp-${name}-`));
  const nodeID = `${name}-${randomBytes(3).toString('hex')}`;
  const proc = spawn(process.execPath, [ENTRY], {
    env: {
      ...process.env,
      QIAO_NODE_ID: nodeID,
      QIAO_DATA_DIR: dataDir,
      QIAO_PLUGINS_FILE: path.join(dataDir, 'plugins.json'),
      QIAO_HOST: '127.0.0.1',
      QIAO_ADMIN_HOST: '127.0.0.1',
      QIAO_GATEWAY_PORT: '0',
      QIAO_ADMIN_PORT: '0',
      QIAO_LOG_LEVEL: 'warn',
      TRANSPORTER: NATS_URL,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  let output = '';
  proc.stdout!.on('data', (d) => (output += d));
  proc.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  exited.then(() => fs.rmSync(dataDir, { recursive: true, force: true }));
  const child: Child = {
    name,
    nodeID,
    proc,
    output: () => output,
    exited,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`process ${name} did not become ready in 30 s:\n${output}`));
    }, 30_000);
    proc.on('message', (m: { ready?: boolean }) => {
      if (!m?.ready) return;
      clearTimeout(timer);
      resolve(child);
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`process ${name} exited with ${code} before it was ready:\n${output}`));
    });
  });
}

async function eventually<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

forEachDatabase('multi-process over NATS', ({ url, dialect }) => {
  const namespace = `qiao-mp-${dialect}-${randomBytes(4).toString('hex')}`;
  const children: Child[] = [];
  let storage: Child;
  let gateway: Child;
  let broker: moleculer.ServiceBroker | undefined;
  const heard: Array<{ event: string; data: unknown }> = [];

  before(async function () {
    this.timeout(60_000);
    const common = { QIAO_NAMESPACE: namespace };
    // A needs nothing from B to come up, so both start at once.
    const started = await Promise.allSettled([
      startNode('storage', { ...common, QIAO_SERVICES: 'system,licence,eventlog,im', DATABASE_URL: url(), QIAO_MP_FIXTURE: 'store' }),
      startNode('gateway', { ...common, QIAO_SERVICES: 'gateway', QIAO_MP_FIXTURE: 'probe' }),
    ]);
    for (const s of started) if (s.status === 'fulfilled') children.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    [storage, gateway] = children;

    broker = createBroker(loadConfig(process.env, { transporter: NATS_URL, logLevel: false, nodeId: `test-${randomBytes(3).toString('hex')}` }), { namespace });
    broker.createService({
      name: 'mp-listener',
      events: {
        'im.message.stored'(ctx: moleculer.Context) {
          heard.push({ event: 'im.message.stored', data: ctx.params });
        },
        'eventlog.appended'(ctx: moleculer.Context) {
          heard.push({ event: 'eventlog.appended', data: ctx.params });
        },
      },
    });
    await broker.start();
    await broker.waitForServices(['im', 'eventlog', 'mp-store', 'mp-probe'], 30_000, 50);
    // Discovery is per node: make sure B knows both listeners before anything is broadcast.
    await broker.call('mp-store.waitFor', { services: ['mp-listener', 'mp-probe'] });
  });

  after(async function () {
    this.timeout(30_000);
    await broker?.stop().catch(() => undefined);
    await Promise.all(children.map((c) => c.stop()));
  });

  it('runs im only in the storage process, and the gateway in a process without storage', async () => {
    const services = broker!.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as Array<{ name: string; nodeID: string }>;
    const nodesOf = (name: string) => services.filter((s) => s.name === name).map((s) => s.nodeID);
    assert.deepEqual(nodesOf('im'), [storage.nodeID]);
    assert.deepEqual(nodesOf('eventlog'), [storage.nodeID]);
    assert.deepEqual(nodesOf('gateway'), [gateway.nodeID]);
    const b = await broker!.call<{ pid: number; hasDb: boolean; nodeID: string }>('mp-store.whoami');
    const a = await broker!.call<{ pid: number; hasDb: boolean; nodeID: string }>('mp-probe.whoami');
    assert.deepEqual([b.nodeID, b.pid, b.hasDb], [storage.nodeID, storage.proc.pid, true]);
    assert.deepEqual([a.nodeID, a.pid, a.hasDb], [gateway.nodeID, gateway.proc.pid, false]);
    assert.equal(new Set([a.pid, b.pid, process.pid]).size, 3);
  });

  it('stores a message sent from the gateway process in the storage process and delivers it to every node', async () => {
    const { id: alice } = await broker!.call<{ id: number }, object>('mp-store.users.create', { account: 'alice' });
    const { id: bob } = await broker!.call<{ id: number }, object>('mp-store.users.create', { account: 'bob' });
    const chat = await broker!.call<Conversation, object>('im.conversations.create', { type: 'single', members: [bob], createdBy: alice });

    const send = { conversationId: chat.id, senderId: alice, clientMsgId: 'mp-1', type: 'text', body: { text: 'across processes 跨进程' } };
    const message = await broker!.call<StoredMessage, object>('mp-probe.send', send);
    assert.ok(Number.isInteger(message.id) && message.id > 0);
    assert.deepEqual(message.body, send.body);

    // Delivered: the wake-up reaches this node and the gateway process.
    const here = await eventually('im.message.stored on the test node', () =>
      heard.find((h) => h.event === 'im.message.stored' && (h.data as StoredMessage).id === message.id),
    );
    assert.deepEqual(here.data, message);
    const atGateway = await eventually('im.message.stored in the gateway process', async () =>
      (await broker!.call<StoredMessage[]>('mp-probe.received')).find((m) => m.id === message.id),
    );
    assert.deepEqual(atGateway, message);

    // Stored: the durable log in B has it, and announced its position.
    const { events } = await broker!.call<{ events: Array<{ seq: number; topic: string; payload: StoredMessage }> }, object>('eventlog.read', {
      after: 0,
      topics: ['message.stored'],
    });
    assert.equal(events.length, 1);
    assert.deepEqual(events[0].payload, message);
    await eventually('eventlog.appended for the message', () =>
      heard.find((h) => h.event === 'eventlog.appended' && (h.data as { seq: number }).seq === events[0].seq),
    );

    // A retry from another node is answered with the same message and stores nothing new.
    const retry = await broker!.call<StoredMessage, object>('im.send', send);
    assert.deepEqual(retry, message);
    const { messages } = await broker!.call<{ messages: StoredMessage[] }, object>('im.messages.list', { conversationId: chat.id, userId: bob });
    assert.deepEqual(messages, [message]);
  });

  it('left the record in the database the storage process wrote', async function () {
    this.timeout(30_000);
    // B stops first, so on SQLite only B ever had the file open while it ran.
    assert.equal(await storage.stop(), 0, `storage process did not stop cleanly:\n${storage.output()}`);
    const db = openDatabase(url());
    try {
      const rows = await db.sequelize.query<{ id: number; client_msg_id: string; body: unknown }>('SELECT id, client_msg_id, body FROM messages', {
        type: QueryTypes.SELECT,
      });
      assert.equal(rows.length, 1);
      assert.equal(rows[0].client_msg_id, 'mp-1');
      const body = typeof rows[0].body === 'string' ? JSON.parse(rows[0].body) : rows[0].body;
      assert.deepEqual(body, { text: 'across processes 跨进程' });
      const logged = await db.sequelize.query<{ n: number }>("SELECT COUNT(*) AS n FROM event_log WHERE topic = 'message.stored'", { type: QueryTypes.SELECT });
      assert.equal(Number(logged[0].n), 1);
    } finally {
      await db.close();
    }
  });
});
