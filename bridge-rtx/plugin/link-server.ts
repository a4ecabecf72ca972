import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { LINK_PATH, PAIR_PATH } from './link-protocol.ts';
import { authenticate, exchangeCode, type AgentRecord } from './pairing.ts';
import type { Store } from './store.ts';

/**
 * The bridge's own port (7035 by default): the pairing call and the agent's WebSocket. The plugin runs in a
 * process of its own, so this server lives and dies with the plugin. Nothing here is reachable without a
 * valid code (pairing) or credential (link): a bad upgrade is answered 401 before any socket exists, and
 * pairing attempts are limited per address.
 */

export interface LinkServer {
  port: number;
  close(): Promise<void>;
}

const PAIR_FAILURES_ALLOWED = 10;
const PAIR_WINDOW_MS = 10 * 60_000;

function json(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
}

function readJson(req: http.IncomingMessage, max = 64 * 1024): Promise<Record<string, unknown> | null> {
  return new Promise((resolve) => {
    let size = 0;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= max) chunks.push(c);
    });
    req.on('end', () => {
      if (size > max) return resolve(null);
      try {
        const v = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        resolve(v && typeof v === 'object' && !Array.isArray(v) ? v : null);
      } catch {
        resolve(null);
      }
    });
    req.on('error', () => resolve(null));
  });
}

export async function startLinkServer(opts: {
  host: string;
  port: number;
  store: Store;
  onSession(ws: WebSocket, agent: AgentRecord, address: string): void;
  /** A new agent paired (and every earlier one was revoked). */
  onPaired(agentId: string): void;
  log(level: 'info' | 'warn' | 'error', m: string): void;
}): Promise<LinkServer> {
  const failures = new Map<string, number[]>();
  const limited = (addr: string) => {
    const now = Date.now();
    const recent = (failures.get(addr) ?? []).filter((t) => now - t < PAIR_WINDOW_MS);
    failures.set(addr, recent);
    return recent.length >= PAIR_FAILURES_ALLOWED;
  };
  const wss = new WebSocketServer({ noServer: true, maxPayload: 512 * 1024 * 1024 });

  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://bridge');
      const addr = req.socket.remoteAddress ?? '';
      if (url.pathname === PAIR_PATH && req.method === 'POST') {
        if (limited(addr)) return json(res, 429, { code: 'QIAO_RATE_LIMITED', message: 'too many refused connection codes from this address; wait 10 minutes' });
        const body = await readJson(req);
        const code = typeof body?.code === 'string' ? body.code : '';
        const name = typeof body?.name === 'string' ? body.name : 'rtx-agent';
        if (!code) return json(res, 422, { code: 'QIAO_VALIDATION', message: 'code is required: the connection code from the admin console', field: 'code' });
        const outcome = await exchangeCode(opts.store, code, name, addr);
        if (!outcome.ok) {
          failures.get(addr)!.push(Date.now());
          opts.log('warn', `pairing refused for ${addr}: ${outcome.reason}`);
          return json(res, 401, { code: 'QIAO_UNAUTHENTICATED', message: outcome.reason, field: 'code' });
        }
        opts.log('info', `agent ${outcome.agentId} (${name}) paired from ${addr}`);
        opts.onPaired(outcome.agentId);
        return json(res, 200, { agentId: outcome.agentId, credential: outcome.credential });
      }
      if (url.pathname === '/rtx-bridge/v1/health') return json(res, 200, { ok: true });
      json(res, 404, { code: 'QIAO_NOT_FOUND', message: `nothing at ${url.pathname}: agents pair at POST ${PAIR_PATH} and link at ${LINK_PATH}` });
    })().catch((err: Error) => {
      opts.log('error', `link port: ${err.message}`);
      if (!res.headersSent) json(res, 500, { code: 'QIAO_INTERNAL', message: err.message });
    });
  });

  server.on('upgrade', (req, socket, head) => {
    const refuse = (status: number, text: string) => {
      socket.write(`HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      socket.destroy();
    };
    const url = new URL(req.url ?? '/', 'http://bridge');
    if (url.pathname !== LINK_PATH) return refuse(404, 'Not Found');
    authenticate(opts.store, req.headers.authorization)
      .then((agent) => {
        if (!agent) {
          opts.log('warn', `link refused from ${req.socket.remoteAddress}: no valid agent credential`);
          return refuse(401, 'Unauthorized');
        }
        wss.handleUpgrade(req, socket, head, (ws) => opts.onSession(ws, agent, req.socket.remoteAddress ?? ''));
      })
      .catch((err: Error) => {
        opts.log('error', `link upgrade: ${err.message}`);
        refuse(503, 'Service Unavailable');
      });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
