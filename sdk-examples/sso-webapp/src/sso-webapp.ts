import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { identify, isMain, type IdentifiedUser } from '../../client/src/index.ts';

/**
 * A business web app that signs people in with the `$TOKEN$` Qiao puts into an app's home URL:
 * `/login?token=…` asks `/cgi/identify` who it is (no app key needed), starts a session cookie and
 * redirects to `/`. Tokens live three minutes; the session is the web app's own.
 */
export interface SsoWebApp {
  url: string;
  close(): Promise<void>;
}

export async function startSsoWebApp(qiaoBaseUrl: string, opts: { port?: number } = {}): Promise<SsoWebApp> {
  const sessions = new Map<string, IdentifiedUser>();
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    if (url.pathname === '/login') {
      const who = await identify(qiaoBaseUrl, url.searchParams.get('token') ?? '');
      if (!who) return res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' }).end('login failed: the token is not valid (expired or used elsewhere)');
      const sid = randomBytes(16).toString('hex');
      sessions.set(sid, who);
      return res.writeHead(302, { location: '/', 'set-cookie': `sid=${sid}; HttpOnly; SameSite=Lax; Path=/` }).end();
    }
    const sid = /(?:^|;\s*)sid=([0-9a-f]{32})/.exec(req.headers.cookie ?? '')?.[1];
    const who = sid ? sessions.get(sid) : undefined;
    if (!who) return res.writeHead(401, { 'content-type': 'text/plain; charset=utf-8' }).end('not signed in: open this app from the Qiao client');
    return res.writeHead(200, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify({ hello: who.chsName, account: who.account, gid: who.gid }));
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((r) => server.close(() => r())) };
}

if (isMain(import.meta.url)) {
  // node sso-webapp/src/sso-webapp.ts   (YOUDU_BASE_URL, PORT)
  const web = await startSsoWebApp(process.env.YOUDU_BASE_URL ?? 'http://127.0.0.1:7080', { port: Number(process.env.PORT ?? 8082) });
  console.log(`web app on ${web.url}; set the app's home URL to ${web.url}/login?token=$TOKEN$`);
}
