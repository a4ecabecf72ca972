import { scryptSync, timingSafeEqual, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { credentialsFromEnv, isMain, serveCallbacks, type CallbackServer } from '../../client/src/index.ts';

/**
 * A third-party password-auth server (第三方认证). People whose auth type is "third party" (set with
 * `/cgi/user/setauth` authType 2) log in to Qiao with this system's password: Qiao calls back with
 * `{ msgType: "auth", fromUser, passwd }` and this server answers errcode 0 (right password), 300002
 * (wrong password) or 300001 (no such account). It keeps only scrypt hashes of the passwords.
 */
export const ERRCODE_OK = 0;
export const ERRCODE_ACCOUNT_NOTEXIST = 300001;
export const ERRCODE_ACCOUNT_AUTHFAILED = 300002;

export class PasswordStore {
  readonly #hashes = new Map<string, { salt: Buffer; hash: Buffer }>();
  set(account: string, password: string): void {
    const salt = randomBytes(16);
    this.#hashes.set(account, { salt, hash: scryptSync(password, salt, 32) });
  }
  check(account: string, password: string): 'ok' | 'wrong' | 'unknown' {
    const h = this.#hashes.get(account);
    if (!h) return 'unknown';
    return timingSafeEqual(scryptSync(password, h.salt, 32), h.hash) ? 'ok' : 'wrong';
  }
}

export async function startPasswordAuth(app: { appId: string; encodingAesKey: string; callbackToken: string }, store: PasswordStore, opts: { port?: number } = {}): Promise<CallbackServer & { checks: string[] }> {
  const checks: string[] = [];
  const server = await serveCallbacks({ appId: app.appId, encodingAesKey: app.encodingAesKey, token: app.callbackToken }, (m) => {
    if (m.msgType !== 'auth') return { errcode: ERRCODE_OK };
    const verdict = store.check(String(m.fromUser), String(m.passwd ?? ''));
    checks.push(`${m.fromUser}:${verdict}`);
    if (verdict === 'ok') return { errcode: ERRCODE_OK };
    return verdict === 'wrong' ? { errcode: ERRCODE_ACCOUNT_AUTHFAILED, errmsg: 'wrong password' } : { errcode: ERRCODE_ACCOUNT_NOTEXIST, errmsg: 'no such account' };
  }, { port: opts.port });
  return Object.assign(server, { checks });
}

if (isMain(import.meta.url)) {
  // node password-auth/src/password-auth.ts passwords.json   ({"account": "password", …}; YOUDU_* env of sysOrgAssistant, PORT)
  const store = new PasswordStore();
  for (const [account, password] of Object.entries(JSON.parse(fs.readFileSync(process.argv[2], 'utf8')) as Record<string, string>)) store.set(account, password);
  const server = await startPasswordAuth(credentialsFromEnv(), store, { port: Number(process.env.PORT ?? 8084) });
  console.log(`password server on ${server.url}: set it as externalAuth.url in Qiao's auth settings`);
}
