import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { credentialsFromEnv, identify, isMain, YouduClient, type AppCredentials } from '../../client/src/index.ts';

/**
 * An OA "to-do" system: assigning a to-do pushes a link message to the assignee through the OA app; the
 * link asks the client to append the viewer's SSO token (action 1), and the app's home URL in Qiao is
 * `<this server>/sso?token=$TOKEN$`. Opening either verifies the token with /cgi/identify, so people land
 * signed in without a password, and see only their own to-dos.
 */
export interface Todo {
  id: number;
  assignee: string;
  title: string;
  done: boolean;
}

export interface OaTodo {
  url: string;
  todos: Todo[];
  assign(assignee: string, title: string): Promise<Todo>;
  close(): Promise<void>;
}

export async function startOaTodo(app: AppCredentials, opts: { port?: number; publicUrl?: string } = {}): Promise<OaTodo> {
  const youdu = new YouduClient(app);
  const todos: Todo[] = [];
  let base = opts.publicUrl ?? '';

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', base);
    const send = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
    const who = await identify(app.baseUrl, url.searchParams.get('token') ?? '');
    if (!who) return send(401, { error: 'open this page from the Qiao client: the SSO token is missing or expired' });
    if (url.pathname === '/sso') return send(200, { user: who.account, todos: todos.filter((t) => t.assignee === who.account) });
    const m = /^\/todos\/(\d+)$/.exec(url.pathname);
    const todo = m ? todos.find((t) => t.id === Number(m[1])) : undefined;
    if (!todo) return send(404, { error: 'no such to-do' });
    if (todo.assignee !== who.account) return send(403, { error: `to-do ${todo.id} is assigned to someone else` });
    return send(200, { user: who.account, todo });
  });
  await new Promise<void>((r) => server.listen(opts.port ?? 0, '127.0.0.1', r));
  if (!base) base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    url: base,
    todos,
    async assign(assignee, title) {
      const todo = { id: todos.length + 1, assignee, title, done: false };
      todos.push(todo);
      await youdu.sendLink({ toUser: [assignee] }, { title: `待办：${title}`, url: `${base}/todos/${todo.id}`, action: 1 });
      return todo;
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
}

if (isMain(import.meta.url)) {
  // node oa-todo/src/oa-todo.ts <assignee> <title>   (YOUDU_* env, PORT, PUBLIC_URL)
  const oa = await startOaTodo(credentialsFromEnv(), { port: Number(process.env.PORT ?? 8081), publicUrl: process.env.PUBLIC_URL });
  console.log(`OA to-do listening on ${oa.url}; set the app's home URL to ${oa.url}/sso?token=$TOKEN$`);
  if (process.argv[2]) console.log(await oa.assign(process.argv[2], process.argv[3] ?? 'example to-do'));
}
