import type { Context, ServiceBroker } from 'moleculer';
import type { Database } from '../db/database.ts';
import { findApp, type App, type AppKind } from './app-store.ts';
import { aesKey, decrypt, encrypt, prefixWasIv } from './crypto.ts';
import { cgiError, CgiError, fromQiaoError } from './errcodes.ts';
import { checkAccessToken, rememberEnvelope } from './tokens.ts';

/** A request as the gateway hands it over: the body already split into fields (JSON, form or multipart). */
export interface CgiInput {
  method: string;
  path: string;
  query: Record<string, string>;
  body:
    | { kind: 'none' }
    | { kind: 'invalid'; reason: string; text?: string }
    | { kind: 'json' | 'form' | 'multipart'; fields: Record<string, unknown>; files?: Record<string, string> };
}

/** What goes back: the JSON envelope, or a file body with Youdu's `encrypt` header (media/get, avatar/get). */
export type CgiOutput =
  | { kind: 'json'; body: { errcode: number; errmsg: string; encrypt?: string } }
  | { kind: 'raw'; headers: Record<string, string>; body: string }
  | { kind: 'identify'; body: unknown };

/** What handlers reach besides the broker: set up once by the apps service. */
export interface CgiDeps {
  mediaDir: string;
  /** Queues a notice callback to an app (durable; delivered and retried by the callback worker). */
  enqueueCallback(appId: string, message: Record<string, unknown>, target?: { url: string; token: string | null }): Promise<string>;
  /** Starts an org replace-all job in the background. */
  startJob(jobId: string): void;
}

export interface CgiRequest {
  app: App;
  path: string;
  deps: CgiDeps;
  buin: number;
  /** The decrypted JSON of a POST, or the query string of a GET. */
  params: Record<string, unknown>;
  /** The body as text, for `rawBody` routes. */
  text: string;
  query: Record<string, string>;
  files: Record<string, string>;
  now: Date;
  ctx: Context;
  db: Database;
  broker: ServiceBroker;
  /** Decrypts a further encrypted value (an uploaded file) with the caller's key. */
  open(value: string, field: string): Buffer;
  seal(value: Buffer | string): string;
}

export type CgiResult = Record<string, unknown> | null | { raw: { headers: Record<string, string>; body: string } };

export interface CgiRoute {
  paths: string[];
  /** POST routes read an encrypted envelope; GET routes read the query string. Both are accepted where SDKs differ. */
  methods: Array<'GET' | 'POST'>;
  /** App kinds allowed; any other kind answers ERRCODE_INVALID_APPID, Youdu's answer for the wrong app. */
  apps: 'any' | AppKind[];
  /** Youdu's set.ent.notice / popwindow authenticate by the envelope alone (no accessToken). */
  envelopeOnly?: boolean;
  /** The body is the request itself, not an envelope (org/xmlsync posts plain XML): the accessToken alone authenticates. */
  rawBody?: boolean;
  handler(req: CgiRequest): Promise<CgiResult>;
}

export const ORG_WRITE: AppKind[] = ['sysOrgAssistant'];
export const CUSTOM: AppKind[] = ['app'];

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fieldOf(fields: Record<string, unknown>, ...names: string[]): unknown {
  for (const n of names) if (fields[n] !== undefined) return fields[n];
  return undefined;
}

/** Reads and checks the envelope `{ buin, appId, encrypt }` in the order Youdu's codes are documented. */
async function readEnvelope(db: Database, input: CgiInput, companyBuin: number, needEncrypt: boolean) {
  if (input.body.kind === 'invalid') throw cgiError('ERRCODE_INVALID_FORMAT_JSON', `the request body is not a JSON object or form: ${input.body.reason}`);
  const fields = input.body.kind === 'none' ? {} : input.body.fields;
  const form = input.body.kind === 'form' || input.body.kind === 'multipart';
  let buin = fieldOf(fields, 'buin');
  if (buin === undefined || buin === null || buin === '') throw cgiError('ERRCODE_MISS_BUIN', 'buin is missing');
  if (form && typeof buin === 'string' && /^\d{1,10}$/.test(buin)) buin = Number(buin);
  if (typeof buin !== 'number' || !Number.isInteger(buin)) throw cgiError('ERRCODE_INVALID_FORMAT_BUIN', 'buin must be an integer');
  if (buin !== companyBuin) throw cgiError('ERRCODE_INVALID_BUIN', `buin ${buin} is not this company's number`);
  const appId = fieldOf(fields, 'appId', 'app_id');
  if (appId === undefined || appId === null || appId === '') throw cgiError('ERRCODE_MISS_APPID', 'appId is missing');
  if (typeof appId !== 'string') throw cgiError('ERRCODE_INVALID_FORMAT_APPID', 'appId must be a string');
  const app = await findApp(db, appId);
  if (!app || !app.enabled) throw cgiError('ERRCODE_INVALID_APPID', `appId "${appId.slice(0, 64)}" is not an enabled app`);
  const enc = fieldOf(fields, 'encrypt', 'msg_encrypt');
  if (enc === undefined || enc === null || enc === '') {
    if (needEncrypt) throw cgiError('ERRCODE_MISS_ENCRYPT', 'encrypt is missing');
    return { app, buin, encrypted: null as string | null };
  }
  if (typeof enc !== 'string') throw cgiError('ERRCODE_INVALID_FORMAT_ENCRYPT', 'encrypt must be a string');
  return { app, buin, encrypted: enc };
}

function parseJsonObject(buf: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch {
    throw cgiError('ERRCODE_INVALID_FORMAT_JSON', `${what} is not JSON`);
  }
  if (!isObj(v)) throw cgiError('ERRCODE_INVALID_FORMAT_JSON', `${what} must be a JSON object`);
  return v;
}

function ok(app: App | null, result: Record<string, unknown> | null): CgiOutput {
  const body: { errcode: number; errmsg: string; encrypt?: string } = { errcode: 0, errmsg: 'ok' };
  if (result && typeof result.__errmsg === 'string') return { kind: 'json', body: { errcode: 0, errmsg: result.__errmsg } };
  if (result && app) body.encrypt = encrypt(JSON.stringify(result), aesKey(app.encodingAesKey), app.appId);
  return { kind: 'json', body };
}

export function errorOutput(err: unknown): CgiOutput {
  const e = err instanceof CgiError ? err : fromQiaoError(err);
  return { kind: 'json', body: { errcode: e.errcode, errmsg: e.message } };
}

export interface Dispatcher {
  routes: Map<string, CgiRoute>;
  deps: CgiDeps;
  companyBuin(): Promise<number>;
}

/** Runs one `/cgi/...` request: token, envelope, app permissions, the handler, the sealed answer. */
export async function dispatch(d: Dispatcher, db: Database, ctx: Context, input: CgiInput, now: Date): Promise<CgiOutput> {
  const route = d.routes.get(input.path);
  try {
    if (!route) throw cgiError('ERRCODE_INVALID_REQUEST', `no open API endpoint ${input.path}`);
    const method = input.method === 'GET' ? 'GET' : 'POST';
    if (!route.methods.includes(method)) throw cgiError('ERRCODE_INVALID_REQUEST', `${input.path} is called with ${route.methods.join(' or ')}`);
    const tokenApp = route.envelopeOnly && !input.query.accessToken ? null : await checkAccessToken(db, input.query.accessToken, now);
    const hasEnvelope = input.body.kind !== 'none' && !route.rawBody;
    let app: App;
    let buin = await d.companyBuin();
    let params: Record<string, unknown>;
    let encrypted: string | null = null;
    if (method === 'POST' && (hasEnvelope || tokenApp === null)) {
      const env = await readEnvelope(db, input, buin, true);
      if (tokenApp !== null && env.app.appId !== tokenApp) throw cgiError('ERRCODE_INVALID_APPID', `appId "${env.app.appId}" is not the app the accessToken was issued to`);
      app = env.app;
      buin = env.buin;
      encrypted = env.encrypted;
      params = parseJsonObject(decrypt(encrypted!, aesKey(app.encodingAesKey), app.appId), 'the decrypted encrypt');
      // Query parameters (avatar/set's userId) sit beside the envelope's content.
      params = { ...input.query, ...params };
    } else {
      const found = await findApp(db, tokenApp!);
      if (!found || !found.enabled) throw cgiError('ERRCODE_INVALID_APPID', `the app of this accessToken is disabled or deleted`);
      app = found;
      params = { ...input.query };
    }
    delete params.accessToken;
    if (route.apps !== 'any' && !route.apps.includes(app.kind)) {
      throw cgiError('ERRCODE_INVALID_APPID', `${input.path} is not open to ${app.kind === 'app' ? 'custom apps' : app.kind}: invalid appId "${app.appId}"`);
    }
    if (encrypted !== null && !prefixWasIv(encrypted, aesKey(app.encodingAesKey))) await rememberEnvelope(db, app.appId, encrypted, now);
    const key = aesKey(app.encodingAesKey);
    const req: CgiRequest = {
      app,
      path: input.path,
      deps: d.deps,
      buin,
      params,
      query: input.query,
      files: input.body.kind === 'multipart' ? (input.body.files ?? {}) : {},
      text: route.rawBody && input.body.kind === 'invalid' ? (input.body.text ?? '') : '',
      now,
      ctx,
      db,
      broker: ctx.broker,
      open: (value, field) => decrypt(value, key, app.appId, field),
      seal: (value) => encrypt(value, key, app.appId),
    };
    const result = await route.handler(req);
    if (result && 'raw' in result && isObj(result.raw)) return { kind: 'raw', headers: result.raw.headers as Record<string, string>, body: result.raw.body as string };
    return ok(app, result as Record<string, unknown> | null);
  } catch (err) {
    if (!(err instanceof CgiError) && !(err as { type?: string })?.type) ctx.broker.logger.error(`open API ${input.path} failed`, err);
    return errorOutput(err);
  }
}

