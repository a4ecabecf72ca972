import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type moleculer from 'moleculer';
import type { WebSocket } from 'ws';
import type { Identity } from '../client/identity.ts';
import { until } from '../client/test-kit.ts';
import { SOCKET_DEFAULTS } from './client-socket.ts';
import { SocketHub } from './hub.ts';

/** A socket the hub can hold: records what is sent to it. */
class FakeSocket extends EventEmitter {
  readonly OPEN = 1;
  readyState = 1;
  readonly sent: any[] = [];
  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(): void {
    this.readyState = 3;
  }
  terminate(): void {
    this.readyState = 3;
  }
  ping(): void {}
}

interface Call {
  action: string;
  params: any;
  answer: (value: unknown) => void;
  fail: (err: Error) => void;
}

/**
 * The hub's wake-ups against a stand-in broker that records every call and answers when the test says,
 * so how many head lookups a wake-up costs, and in which order heads reach a socket, is seen exactly.
 */
describe('socket hub wake-ups', () => {
  let calls: Call[];
  let hub: SocketHub;
  const sockets = new Map<number, FakeSocket>();

  beforeEach(async () => {
    calls = [];
    sockets.clear();
    const broker = {
      nodeID: 'stub',
      logger: { warn() {}, info() {}, debug() {}, error() {} },
      broadcast: () => Promise.resolve(),
      call: (action: string, params: any) => {
        // Heads for `ready` are answered at once; the wake-ups' batches when the test says.
        if (action === 'im.sync.head') return Promise.resolve({ head: 0 });
        return new Promise((answer, fail) => calls.push({ action, params, answer, fail }));
      },
    } as unknown as moleculer.ServiceBroker;
    hub = new SocketHub(broker, SOCKET_DEFAULTS, 'stub');
    for (let userId = 1; userId <= 5000; userId++) {
      const socket = new FakeSocket();
      sockets.set(userId, socket);
      const identity: Identity = { userId, account: `u${userId}`, sessionId: userId, deviceType: 'web', deviceId: `w${userId}`, wipe: false, mustChangePassword: false };
      hub.accept(socket as unknown as WebSocket, '127.0.0.1', { identity, token: 't' });
    }
    await until('every socket ready', () => [...sockets.values()].every((s) => s.sent.some((f) => f.type === 'ready')));
  });

  const syncs = (userId: number) => sockets.get(userId)!.sent.filter((f) => f.type === 'sync').map((f) => f.head);

  it('asks for the heads of a 5,000-member group in one call, and tells each person theirs', async () => {
    const everyone = [...sockets.keys()];
    hub.wake([...everyone, 99_999]);
    await until('the heads call', () => calls.length === 1);
    assert.equal(calls[0].action, 'im.sync.heads');
    assert.deepEqual([...calls[0].params.userIds].sort((a: number, b: number) => a - b), everyone, 'only people connected here');
    // Person 7 is not active (left out of the answer): told to look again without a head, as before.
    calls[0].answer({ heads: Object.fromEntries(everyone.filter((u) => u !== 7).map((u) => [u, u * 2])) });
    await until('every socket told', () => everyone.every((u) => syncs(u).length === 1));
    assert.deepEqual([syncs(1), syncs(2500), syncs(5000), syncs(7)], [[2], [5000], [10000], [null]]);
    assert.equal(calls.length, 1);
  });

  it('keeps each person’s heads in order: someone woken again waits for their batch to come back', async () => {
    hub.wake([1, 2]);
    await until('the first call', () => calls.length === 1);
    hub.wake([2, 3]);
    // 3 goes at once; 2 waits for the answer about them that is still out.
    await until('the second call', () => calls.length === 2);
    assert.deepEqual(calls[1].params.userIds, [3]);
    calls[1].answer({ heads: { 3: 30 } });
    calls[0].answer({ heads: { 1: 10, 2: 20 } });
    await until('the third call', () => calls.length === 3);
    assert.deepEqual(calls[2].params.userIds, [2]);
    calls[2].answer({ heads: { 2: 21 } });
    await until('2 told twice', () => syncs(2).length === 2);
    assert.deepEqual([syncs(1), syncs(2), syncs(3)], [[10], [20, 21], [30]]);
  });

  it('still wakes everyone in a batch whose lookup failed', async () => {
    hub.wake([4, 5]);
    await until('the call', () => calls.length === 1);
    calls[0].fail(new Error('im is away'));
    await until('both told', () => syncs(4).length === 1 && syncs(5).length === 1);
    assert.deepEqual([syncs(4), syncs(5)], [[null], [null]]);
  });

  it('splits more than 5,000 people into calls of at most 5,000', async () => {
    for (let userId = 5001; userId <= 6000; userId++) {
      const socket = new FakeSocket();
      sockets.set(userId, socket);
      hub.accept(socket as unknown as WebSocket, '127.0.0.1', { identity: { userId, account: `u${userId}`, sessionId: userId, deviceType: 'web', deviceId: `w${userId}`, wipe: false, mustChangePassword: false }, token: 't' });
    }
    await until('the new sockets ready', () => sockets.get(6000)!.sent.some((f) => f.type === 'ready'));
    hub.wake(Array.from({ length: 6000 }, (_, i) => i + 1));
    await until('the calls', () => calls.length === 2);
    assert.deepEqual(calls.map((c) => c.params.userIds.length).sort(), [1000, 5000]);
    for (const c of calls) c.answer({ heads: {} });
    await until('everyone told', () => [...sockets.keys()].every((u) => syncs(u).length === 1));
  });
});
