import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FeedStatus } from './filter-feed.ts';
import { sendBytes, sendJson } from './http-util.ts';
import { exportOrgXml } from './org-xml.ts';
import type { RtxState } from './rtx-state.ts';

/**
 * The RTX-host interface, version 1: what the script on the RTX server (rtx-host/rtx-host-api.ps1) offers
 * the agent, and what the emulator offers identically. JSON is UTF-8; the organisation XML is passed on
 * byte for byte as USERSYNC exports it (GBK under a gb2312 declaration).
 *
 *   GET /rtxhost/v1/health              200 {ok, interface: 1, rtx: "up"|"down",
 *                                           feed: {running, registered, pending, delivered, lastSeq, lastError}}
 *   GET /rtxhost/v1/org.xml             200 text/xml; charset=gb2312 — 503 while RTX is down
 *   GET /rtxhost/v1/presence?users=a,b  200 {states: {a: 1, b: 0}, unknown: []} — 503 while RTX is down
 *
 * With a token configured every call needs `Authorization: Bearer <token>`.
 */
export const HOST_API_PREFIX = '/rtxhost/v1';
export const PRESENCE_BATCH_MAX = 1000;

export interface HostContext {
  state: RtxState;
  token?: string;
  isDown(): boolean;
  feedStatus(): FeedStatus;
}

export function jsonError(res: ServerResponse, status: number, code: string, message: string, field?: string): void {
  sendJson(res, status, { code, message, ...(field ? { field } : {}) });
}

export function bearerOk(req: IncomingMessage, token: string | undefined): boolean {
  if (!token) return true;
  const h = req.headers.authorization ?? '';
  return h === `Bearer ${token}`;
}

/** Answers a host-interface request; returns false when the path is not part of it. */
export function handleHostRequest(ctx: HostContext, req: IncomingMessage, res: ServerResponse, url: URL): boolean {
  if (!url.pathname.startsWith(`${HOST_API_PREFIX}/`)) return false;
  if (!bearerOk(req, ctx.token)) {
    jsonError(res, 401, 'QIAO_UNAUTHENTICATED', 'the RTX-host interface needs "Authorization: Bearer <token>"', 'authorization');
    return true;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    jsonError(res, 405, 'QIAO_BAD_REQUEST', `${req.method} is not supported here; the RTX-host interface is read-only`);
    return true;
  }
  const path = url.pathname.slice(HOST_API_PREFIX.length);
  const down = ctx.isDown();
  switch (path) {
    case '/health': {
      const f = ctx.feedStatus();
      sendJson(res, 200, {
        ok: true,
        interface: 1,
        rtx: down ? 'down' : 'up',
        // Same keys as rtx-host-api.ps1 reads from the forwarder's status file.
        feed: { running: f.url !== null, registered: f.url !== null && !down, pending: f.pending, delivered: f.delivered, lastSeq: f.lastSeq, lastError: f.lastError },
      });
      return true;
    }
    case '/org.xml': {
      if (down) {
        unavailable(res);
        return true;
      }
      sendBytes(res, 200, 'text/xml; charset=gb2312', exportOrgXml(ctx.state.org, ctx.state.enterprise));
      return true;
    }
    case '/presence': {
      if (down) {
        unavailable(res);
        return true;
      }
      const raw = url.searchParams.get('users') ?? '';
      const names = [...new Set(raw.split(/[,;]/).map((s) => s.trim()).filter((s) => s !== ''))];
      if (names.length === 0) {
        jsonError(res, 400, 'QIAO_VALIDATION', 'users is required: comma-separated RTX account names', 'users');
        return true;
      }
      if (names.length > PRESENCE_BATCH_MAX) {
        jsonError(res, 400, 'QIAO_VALIDATION', `users lists ${names.length} names; ask for at most ${PRESENCE_BATCH_MAX} at a time`, 'users');
        return true;
      }
      const states: Record<string, number> = {};
      const unknown: string[] = [];
      for (const n of names) {
        if (ctx.state.org.user(n)) states[n] = ctx.state.presenceOf(n);
        else unknown.push(n);
      }
      sendJson(res, 200, { states, unknown });
      return true;
    }
    default:
      jsonError(res, 404, 'QIAO_NOT_FOUND', `no such RTX-host call: ${url.pathname}`);
      return true;
  }
}

function unavailable(res: ServerResponse): void {
  jsonError(res, 503, 'QIAO_UNAVAILABLE', 'the RTX server is not running (RTX_SvrMain does not answer)');
}
