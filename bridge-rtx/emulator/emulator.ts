import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { type ControlContext, type DownMode, handleControlRequest } from './control-api.ts';
import { FilterFeed } from './filter-feed.ts';
import { handleHostRequest, HOST_API_PREFIX, jsonError } from './host-api.ts';
import { readBody, sendGbk } from './http-util.ts';
import { RtxState } from './rtx-state.ts';
import { handleSdkRequest } from './sdk-routes.ts';
import { type IpLimit, loadSdkProperty, NO_IP_LIMIT } from './sdk-property.ts';

export const DEFAULT_SDK_PORT = 8012;
/** The RTX-host interface (and, on the emulator, the control API): "8012 plus 10000", clear of RTX's own ports. */
export const DEFAULT_HOST_PORT = 18012;

export interface RtxEmulatorOptions {
  /** HTTP SDK port; 8012 like RTX, 0 for any free port. */
  port?: number;
  /** Address the SDK port listens on (RTX listens on all; the default here is loopback). */
  bind?: string;
  /** RTX-host interface + control API port; 0 for any free port. */
  hostPort?: number;
  hostBind?: string;
  /** Where the application-filter feed POSTs each IM (the agent). Unset: nothing is forwarded. */
  forwardUrl?: string;
  /** Sent as `Authorization: Bearer …` with every forwarded IM. */
  forwardToken?: string;
  /** Required from callers of the RTX-host interface when set. */
  hostToken?: string;
  /** Required from callers of the control API when set. */
  controlToken?: string;
  /** SDKProperty.xml with the `<sdkhttp><IPLimit>` allow-list; none means no limit. */
  sdkPropertyFile?: string;
  /** The `name` of `<enterprise>` in the organisation XML. */
  enterpriseName?: string;
  feedRetryInitialMs?: number;
  feedRetryMaxMs?: number;
}

export interface RtxEmulator {
  /** Base URL of the HTTP SDK, e.g. `http://127.0.0.1:8012`. */
  url: string;
  port: number;
  /** Base URL of the RTX-host interface, e.g. `http://127.0.0.1:18012/rtxhost/v1`. */
  hostUrl: string;
  /** Base URL of the control API, e.g. `http://127.0.0.1:18012/_emulator`. */
  controlUrl: string;
  hostPort: number;
  state: RtxState;
  feed: FilterFeed;
  /**
   * Takes the server down. `refuse` (default) closes the SDK port, so callers get ECONNREFUSED — what a
   * stopped RTX_HTTPServer / powered-off RTX host looks like, and the most faithful outage. `503` keeps the
   * port open and answers 503, like a reverse proxy in front of a dead RTX. Either way RTX clients cannot
   * send and the RTX-host interface answers 503 for org and presence.
   */
  down(mode?: DownMode): Promise<void>;
  up(): Promise<void>;
  isDown(): DownMode | null;
  reloadSdkProperty(): IpLimit;
  stop(): Promise<void>;
}

function listen(server: http.Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function trackSockets(server: http.Server): Set<Socket> {
  const sockets = new Set<Socket>();
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return sockets;
}

async function closeServer(server: http.Server, sockets: Set<Socket>): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const s of sockets) s.destroy();
  await closed;
}

function urlHost(bind: string): string {
  if (bind === '0.0.0.0' || bind === '::') return '127.0.0.1';
  return bind.includes(':') ? `[${bind}]` : bind;
}

export async function startRtxEmulator(opts: RtxEmulatorOptions = {}): Promise<RtxEmulator> {
  const bind = opts.bind ?? '127.0.0.1';
  const hostBind = opts.hostBind ?? '127.0.0.1';
  const state = new RtxState({ name: opts.enterpriseName ?? 'RTX' });
  const feed = new FilterFeed({
    url: opts.forwardUrl,
    token: opts.forwardToken,
    retryInitialMs: opts.feedRetryInitialMs,
    retryMaxMs: opts.feedRetryMaxMs,
  });
  state.onIm((sender, receivers, content, imMessageId) => {
    feed.push(sender, receivers, content, imMessageId);
  });

  let ipLimit: IpLimit = opts.sdkPropertyFile ? loadSdkProperty(opts.sdkPropertyFile) : NO_IP_LIMIT;
  let downMode: DownMode | null = null;

  const sdkServer = http.createServer((req, res) => {
    if (downMode === '503') {
      void readBody(req, 1 << 20).then(() => sendGbk(res, 503, '<html><body><h1>503 Service Unavailable</h1></body></html>'));
      return;
    }
    handleSdkRequest({ state, ipLimit: () => ipLimit }, req, res).catch((err: unknown) => {
      if (!res.headersSent) sendGbk(res, 500, `<html><body>500 ${String((err as Error)?.message ?? err)}</body></html>`);
      else res.destroy();
    });
  });
  const sdkSockets = trackSockets(sdkServer);

  const emulator = {} as RtxEmulator;
  const control: ControlContext = {
    state,
    feed,
    token: opts.controlToken,
    isDown: () => downMode,
    down: (mode) => emulator.down(mode),
    up: () => emulator.up(),
    reloadSdkProperty: () => emulator.reloadSdkProperty(),
  };
  const hostServer = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://rtx-host');
    const host = { state, token: opts.hostToken, isDown: () => downMode !== null, feedStatus: () => feed.status() };
    if (handleHostRequest(host, req, res, url)) return;
    handleControlRequest(control, req, res, url)
      .then((handled) => {
        if (!handled) jsonError(res, 404, 'QIAO_NOT_FOUND', `nothing at ${url.pathname}; the RTX-host interface is under ${HOST_API_PREFIX}/, the control API under /_emulator/`);
      })
      .catch((err: unknown) => {
        if (!res.headersSent) jsonError(res, 500, 'QIAO_INTERNAL', String((err as Error)?.message ?? err));
        else res.destroy();
      });
  });
  const hostSockets = trackSockets(hostServer);

  const port = await listen(sdkServer, opts.port ?? DEFAULT_SDK_PORT, bind);
  let hostPort: number;
  try {
    hostPort = await listen(hostServer, opts.hostPort ?? DEFAULT_HOST_PORT, hostBind);
  } catch (err) {
    await closeServer(sdkServer, sdkSockets);
    throw err;
  }

  Object.assign(emulator, {
    url: `http://${urlHost(bind)}:${port}`,
    port,
    hostUrl: `http://${urlHost(hostBind)}:${hostPort}${HOST_API_PREFIX}`,
    controlUrl: `http://${urlHost(hostBind)}:${hostPort}/_emulator`,
    hostPort,
    state,
    feed,
    isDown: () => downMode,
    async down(mode: DownMode = 'refuse') {
      if (downMode === mode) return;
      if (downMode === 'refuse' && mode === '503') await listen(sdkServer, port, bind);
      downMode = mode;
      state.down = true;
      if (mode === 'refuse') await closeServer(sdkServer, sdkSockets);
    },
    async up() {
      if (downMode === 'refuse') await listen(sdkServer, port, bind);
      downMode = null;
      state.down = false;
    },
    reloadSdkProperty() {
      ipLimit = opts.sdkPropertyFile ? loadSdkProperty(opts.sdkPropertyFile) : NO_IP_LIMIT;
      return ipLimit;
    },
    async stop() {
      await feed.stop();
      await Promise.all([closeServer(sdkServer, sdkSockets), closeServer(hostServer, hostSockets)]);
    },
  } satisfies RtxEmulator);
  return emulator;
}
