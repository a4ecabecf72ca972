import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FilterFeed } from './filter-feed.ts';
import { bearerOk, jsonError } from './host-api.ts';
import { readBody, readJsonObject, sendBytes, sendJson } from './http-util.ts';
import { exportOrgXml, importOrgXml } from './org-xml.ts';
import { RtxFault } from './rtx-fault.ts';
import { type Gender, OrgError, type RtxUser, type UserInput } from './rtx-org.ts';
import type { Presence, RtxState } from './rtx-state.ts';
import { XmlError } from './xml.ts';
import type { IpLimit } from './sdk-property.ts';

/**
 * The emulator's own control API for tests and demos — not part of anything RTX offers. It lives under
 * `/_emulator/` on the RTX-host port (never on the SDK port, which must look like RTX and which goes dark
 * when the server is taken down). JSON in and out, UTF-8. See README.md for the list of calls.
 */
export const CONTROL_PREFIX = '/_emulator';

export type DownMode = 'refuse' | '503';

export interface ControlContext {
  state: RtxState;
  feed: FilterFeed;
  token?: string;
  isDown(): DownMode | null;
  down(mode: DownMode): Promise<void>;
  up(): Promise<void>;
  reloadSdkProperty(): IpLimit;
}

class BadInput extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(message);
    this.field = field;
  }
}

function str(body: Record<string, unknown>, field: string, required: true): string;
function str(body: Record<string, unknown>, field: string, required?: false): string | undefined;
function str(body: Record<string, unknown>, field: string, required = false): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) {
    if (required) throw new BadInput(field, `${field} is required`);
    return undefined;
  }
  if (typeof v !== 'string' && typeof v !== 'number') throw new BadInput(field, `${field} must be a string`);
  return String(v);
}

function strList(body: Record<string, unknown>, field: string): string[] | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new BadInput(field, `${field} must be an array of strings`);
  return v as string[];
}

function userInput(body: Record<string, unknown>): Omit<UserInput, 'uid'> {
  const out: Omit<UserInput, 'uid'> = {};
  for (const f of ['name', 'mobile', 'email', 'phone', 'position', 'password'] as const) {
    const v = str(body, f);
    if (v !== undefined) out[f] = v;
  }
  if (body.rtxno !== undefined) {
    const n = Number(body.rtxno);
    if (!Number.isInteger(n)) throw new BadInput('rtxno', 'rtxno must be an integer');
    out.rtxno = n;
  }
  if (body.gender !== undefined) {
    if (body.gender !== 0 && body.gender !== 1) throw new BadInput('gender', 'gender must be 0 (male) or 1 (female)');
    out.gender = body.gender as Gender;
  }
  if (body.face !== undefined) {
    if (!Number.isInteger(body.face) || (body.face as number) < 0) throw new BadInput('face', 'face must be a non-negative integer');
    out.face = body.face as number;
  }
  const depts = strList(body, 'departments');
  if (depts !== undefined) out.departments = depts;
  return out;
}

function presenceValue(v: unknown): Presence {
  if (v === 0 || v === 1 || v === 2) return v;
  throw new BadInput('status', 'status must be 0 (offline), 1 (online) or 2 (away)');
}

export function userView(state: RtxState, u: RtxUser) {
  return {
    uid: u.uid,
    name: u.name,
    rtxno: u.rtxno,
    gender: u.gender,
    mobile: u.mobile,
    email: u.email,
    phone: u.phone,
    position: u.position,
    face: u.face,
    departments: u.departmentIds.map((id) => state.org.deptPath(id)),
    presence: state.presenceOf(u.uid),
  };
}

function fail(res: ServerResponse, err: unknown): void {
  if (err instanceof BadInput) return jsonError(res, 422, 'QIAO_VALIDATION', err.message, err.field);
  if (err instanceof XmlError) return jsonError(res, 422, 'QIAO_VALIDATION', `the XML is not usable: ${err.message}`, 'body');
  if (err instanceof OrgError) {
    const [status, code] = err.kind === 'not-found' ? [404, 'QIAO_NOT_FOUND'] : err.kind === 'conflict' ? [409, 'QIAO_CONFLICT'] : [422, 'QIAO_VALIDATION'];
    return jsonError(res, status, code, err.message, err.field);
  }
  if (err instanceof RtxFault) {
    const map: Record<RtxFault['kind'], [number, string]> = {
      'not-found': [404, 'QIAO_NOT_FOUND'],
      'bad-password': [422, 'QIAO_VALIDATION'],
      'bad-session': [422, 'QIAO_VALIDATION'],
      'group-full': [409, 'QIAO_CONFLICT'],
      'not-member': [403, 'QIAO_FORBIDDEN'],
      'server-down': [503, 'QIAO_UNAVAILABLE'],
    };
    const [status, code] = map[err.kind];
    return jsonError(res, status, code, err.message, err.field);
  }
  jsonError(res, 500, 'QIAO_INTERNAL', (err as Error)?.message ?? String(err));
}

/** Answers a control request; returns false when the path is not under /_emulator. */
export async function handleControlRequest(ctx: ControlContext, req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
  if (url.pathname !== CONTROL_PREFIX && !url.pathname.startsWith(`${CONTROL_PREFIX}/`)) return false;
  if (!bearerOk(req, ctx.token)) {
    jsonError(res, 401, 'QIAO_UNAUTHENTICATED', 'the control API needs "Authorization: Bearer <token>"', 'authorization');
    return true;
  }
  let segs: string[];
  try {
    segs = url.pathname.slice(CONTROL_PREFIX.length).split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    jsonError(res, 400, 'QIAO_BAD_REQUEST', 'the path has a malformed %-escape');
    return true;
  }
  try {
    await dispatch(ctx, req, res, url, segs);
  } catch (err) {
    fail(res, err);
  }
  return true;
}

async function dispatch(ctx: ControlContext, req: IncomingMessage, res: ServerResponse, url: URL, segs: string[]): Promise<void> {
  const m = req.method ?? 'GET';
  const { state } = ctx;
  const json = async () => {
    const r = await readJsonObject(req);
    if (!r.ok) throw new BadInput('body', r.message);
    return r.value;
  };
  const route = `${m} /${segs.map((s, i) => (i % 2 === 1 && segs[i - 1] !== 'sdk-property' ? ':' : s)).join('/')}`;
  switch (route) {
    case 'GET /':
    case 'GET /state': {
      const f = ctx.feed.status();
      return sendJson(res, 200, {
        down: ctx.isDown(),
        users: state.org.userCount(),
        departments: state.org.departments().length,
        groups: state.listGroups().length,
        conversations: state.listConversations().length,
        feed: { url: f.url, pending: f.pending, delivered: f.delivered, lastSeq: f.lastSeq, lastError: f.lastError },
      });
    }
    case 'POST /reset':
      state.reset();
      return sendJson(res, 200, { ok: true });
    case 'GET /departments':
      return sendJson(res, 200, { departments: state.org.departments().map((d) => ({ path: state.org.deptPath(d.id), describe: d.describe })) });
    case 'POST /departments': {
      const b = await json();
      const d = state.org.ensureDepartment(str(b, 'path', true), str(b, 'describe'));
      return sendJson(res, 201, { path: state.org.deptPath(d.id), describe: d.describe });
    }
    case 'DELETE /departments': {
      const path = url.searchParams.get('path');
      if (!path) throw new BadInput('path', 'path is required (?path=公司\\技术部)');
      state.org.deleteDepartment(path);
      return sendJson(res, 200, { ok: true });
    }
    case 'GET /users':
      return sendJson(res, 200, { users: state.org.users().map((u) => userView(state, u)) });
    case 'POST /users': {
      const b = await json();
      const u = state.org.addUser({ uid: str(b, 'uid', true), ...userInput(b) });
      if (b.presence !== undefined) state.setPresence(u.uid, presenceValue(b.presence));
      return sendJson(res, 201, userView(state, u));
    }
    case 'GET /users/:':
      return sendJson(res, 200, userView(state, state.requireUser('uid', segs[1]!)));
    case 'PATCH /users/:': {
      const b = await json();
      const u = state.org.updateUser(segs[1]!, userInput(b));
      if (b.presence !== undefined) state.setPresence(u.uid, presenceValue(b.presence));
      return sendJson(res, 200, userView(state, u));
    }
    case 'DELETE /users/:': {
      const u = state.org.deleteUser(segs[1]!);
      state.forgetUser(u.uid);
      return sendJson(res, 200, { ok: true });
    }
    case 'PUT /users/:/presence': {
      const b = await json();
      state.setPresence(segs[1]!, presenceValue(b.status));
      return sendJson(res, 200, { uid: state.requireUser('uid', segs[1]!).uid, status: state.presenceOf(segs[1]!) });
    }
    case 'GET /users/:/inbox':
      return sendJson(res, 200, state.inbox(segs[1]!));
    case 'GET /groups':
      return sendJson(res, 200, { groups: state.listGroups() });
    case 'POST /groups': {
      const b = await json();
      const g = state.createGroup(str(b, 'name', true), strList(b, 'members') ?? []);
      return sendJson(res, 201, g);
    }
    case 'POST /groups/:/members': {
      const b = await json();
      return sendJson(res, 200, state.addGroupMember(segs[1]!, str(b, 'uid', true)));
    }
    case 'POST /messages': {
      // An RTX user typing a message in the RTX client.
      const b = await json();
      if (ctx.isDown()) throw new RtxFault('server-down', 'server', 'the RTX server is down; RTX clients cannot send');
      const from = str(b, 'from', true);
      const text = str(b, 'text', true);
      const group = str(b, 'group');
      const sent = group !== undefined
        ? state.sendToGroup(from, group, text)
        : state.sendIm({ sender: from, receivers: strList(b, 'to') ?? [], text, key: str(b, 'key'), title: str(b, 'title'), via: 'client' });
      return sendJson(res, 200, sent);
    }
    case 'GET /conversations':
      return sendJson(res, 200, { conversations: state.listConversations().map(({ messages, ...c }) => ({ ...c, messageCount: messages.length })) });
    case 'GET /conversations/:': {
      const c = state.conversation(segs[1]!);
      if (!c) return jsonError(res, 404, 'QIAO_CONVERSATION_NOT_FOUND', `no conversation has key ${segs[1]}`, 'key');
      return sendJson(res, 200, c);
    }
    case 'POST /down': {
      const b = await json();
      const mode = (str(b, 'mode') ?? 'refuse') as DownMode;
      if (mode !== 'refuse' && mode !== '503') throw new BadInput('mode', 'mode must be "refuse" (connections refused, the default) or "503"');
      await ctx.down(mode);
      return sendJson(res, 200, { down: mode });
    }
    case 'POST /up':
      await ctx.up();
      return sendJson(res, 200, { down: null });
    case 'GET /feed':
      return sendJson(res, 200, ctx.feed.status());
    case 'PUT /feed': {
      const b = await json();
      const u = str(b, 'url');
      if (u !== undefined && u !== '' && !/^https?:\/\//.test(u)) throw new BadInput('url', 'url must be an http(s) URL');
      ctx.feed.configure(u || null, str(b, 'token'));
      return sendJson(res, 200, ctx.feed.status());
    }
    case 'GET /org.xml':
      return sendBytes(res, 200, 'text/xml; charset=gb2312', exportOrgXml(state.org, state.enterprise));
    case 'PUT /org.xml': {
      const mode = url.searchParams.get('mode') ?? 'merge';
      if (mode !== 'merge' && mode !== 'replace') throw new BadInput('mode', 'mode must be merge or replace');
      const body = await readBody(req, 256 * 1024 * 1024);
      if (!body) throw new BadInput('body', 'the organisation XML is larger than 256 MiB');
      return sendJson(res, 200, importOrgXml(state.org, body, mode));
    }
    case 'POST /sdk-property/reload':
      return sendJson(res, 200, ctx.reloadSdkProperty());
    default:
      return jsonError(res, 404, 'QIAO_NOT_FOUND', `no such control call: ${m} ${url.pathname}`);
  }
}
