import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody, sendGbk } from './http-util.ts';
import { formParams, getOrPost, getThenPost, type PhpParams, queryParams } from './php-params.ts';
import { faults, IP_LIMITED_TEXT, RtxFault } from './rtx-fault.ts';
import type { Presence, RtxState } from './rtx-state.ts';
import { splitNames } from './rtx-state.ts';
import { newGuid } from './rtxc-data.ts';
import { ipAllowed, type IpLimit } from './sdk-property.ts';

/**
 * The port-8012 HTTP SDK: the PHP pages RTX installs in its webroot, with their quirks. Paths are matched
 * without regard to case (the webroot is a Windows directory); parameter names are case-sensitive (PHP).
 * Every page starts with IPLimit.php, so the allow-list check comes first.
 */

export interface SdkContext {
  state: RtxState;
  ipLimit(): IpLimit;
}

interface Answer {
  status?: number;
  text: string;
  headers?: Record<string, string>;
}

type Route = (ctx: SdkContext, get: PhpParams, post: PhpParams) => Answer;

/** PHP's post_max_size default; a larger body leaves `$_POST` empty. */
const POST_MAX_BYTES = 8 * 1024 * 1024;

export const SUCCESS_TEXT = '操作成功!';
/** SendIM.cgi's success page: an alert box. */
export const SENDIM_SUCCESS_PAGE = '<script language="JavaScript">\r\nalert("操作成功")</script>\r\n';
const DEFAULT_TITLE = '通知';

function faultText(err: unknown): string {
  if (err instanceof RtxFault) return err.message;
  throw err;
}

/** PHP hands the string to COM, which reads a leading integer; anything else is 0 (stay until closed). */
function delayMs(raw: string): number {
  const n = Number.parseInt(raw.trim(), 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** sendnotifybydepart/group: `online` defaults to 1, "only users who are online". */
function onlineOnly(raw: string): boolean {
  return raw.trim() === '' || Number.parseInt(raw.trim(), 10) !== 0;
}

const sendNotify: Route = ({ state }, get, post) => {
  const f = getOrPost(['receiver', 'msg', 'title', 'delaytime', 'okurl', 'errurl'], get, post);
  // okurl/errurl are read (they count in the "all GET fields empty" test) but the shipped page never uses them.
  try {
    const { users, broadcast } = state.resolveReceiverList(f.receiver!);
    state.notify(users, { title: f.title || DEFAULT_TITLE, msg: f.msg!, delayTime: delayMs(f.delaytime!), via: 'SendNotify.cgi', broadcast });
    return { text: SUCCESS_TEXT };
  } catch (err) {
    return { text: `${faultText(err)}<br>` };
  }
};

const sendNotifyByDepart: Route = ({ state }, get, post) => {
  const f = getOrPost(['receiverdepart', 'msg', 'title', 'online', 'delaytime', 'okurl', 'errurl'], get, post);
  try {
    let users = state.departmentMembers(f.receiverdepart!);
    if (onlineOnly(f.online!)) users = state.onlineOnly(users);
    state.notify(users, { title: f.title || DEFAULT_TITLE, msg: f.msg!, delayTime: delayMs(f.delaytime!), via: 'sendnotifybydepart.php' });
    return { text: SUCCESS_TEXT };
  } catch (err) {
    return { text: `${faultText(err)}<br>` };
  }
};

const sendNotifyByGroup: Route = ({ state }, get, post) => {
  const f = getOrPost(['receivergroup', 'msg', 'title', 'online', 'delaytime', 'okurl', 'errurl'], get, post);
  try {
    const g = state.group(f.receivergroup!.trim());
    if (!g || f.receivergroup!.trim() === '') throw faults.groupNotFound('receivergroup', f.receivergroup!);
    let users = state.groupMembers(g);
    if (onlineOnly(f.online!)) users = state.onlineOnly(users);
    state.notify(users, { title: f.title || DEFAULT_TITLE, msg: f.msg!, delayTime: delayMs(f.delaytime!), via: 'sendnotifybygroup.php' });
    return { text: SUCCESS_TEXT };
  } catch (err) {
    return { text: `${faultText(err)}<br>` };
  }
};

const sendIm: Route = ({ state }, get, post) => {
  // The shipped page tests `$receiver` (never set) instead of `$receivers` before falling back to POST, so a
  // GET carrying only `receivers` still reads every field — receivers included — from the POST body.
  const f = getOrPost(['sender', 'pwd', 'receivers', 'msg', 'sessionid'], get, post, ['sender', 'pwd', 'msg', 'sessionid']);
  try {
    const sender = state.requireUser('sender', f.sender!);
    if (sender.password !== f.pwd) throw faults.badPassword(sender.uid);
    state.sendIm({ sender: sender.uid, receivers: splitNames(f.receivers!), text: f.msg!, key: f.sessionid!, via: 'sdk' });
    return { text: SENDIM_SUCCESS_PAGE };
  } catch (err) {
    return { text: faultText(err) };
  }
};

const getSession: Route = ({ state }, get, post) => {
  const receiver = getThenPost('receiver', get, post);
  try {
    state.requireUser('receiver', receiver);
    return { text: newGuid() };
  } catch (err) {
    return { text: faultText(err) };
  }
};

const getMobile: Route = ({ state }, get, post) => {
  const receiver = getThenPost('receiver', get, post);
  try {
    return { text: state.requireUser('receiver', receiver).mobile };
  } catch (err) {
    return { text: faultText(err) };
  }
};

/** GetImage.cgi redirects to the status picture `images/<face+1>-<1 online|2 offline|3 away>.bmp`. */
const getImage: Route = ({ state }, get) => {
  const receiver = get.get('receiver') ?? '';
  const user = state.org.user(receiver);
  const face = user ? user.face + 1 : 0;
  const suffix: Record<Presence, number> = { 0: 2, 1: 1, 2: 3 };
  const location = `images/${face}-${user ? suffix[state.presenceOf(user.uid)] : 2}.bmp`;
  return { status: 302, text: '', headers: { location } };
};

const getStatus: Route = ({ state }, get) => {
  try {
    return { text: String(state.presenceOf(get.get('username') ?? '')) };
  } catch (err) {
    return { text: faultText(err) };
  }
};

const login: Route = ({ state }, get) => {
  const user = get.get('user') ?? '';
  const pwd = get.get('pwd') ?? '';
  if (user === '' || pwd === '') return { text: 'params is null' };
  const u = state.org.user(user);
  return { text: u && u.password === pwd ? 'true' : 'false' };
};

const ROUTES: Record<string, Route> = {
  '/sendnotify.cgi': sendNotify,
  '/sendim.cgi': sendIm,
  '/getsession.cgi': getSession,
  '/getmobile.cgi': getMobile,
  '/getimage.cgi': getImage,
  '/getstatus.php': getStatus,
  '/login.php': login,
  '/sendnotifybydepart.php': sendNotifyByDepart,
  '/sendnotifybygroup.php': sendNotifyByGroup,
};

export const SDK_PATHS = Object.keys(ROUTES);

export async function handleSdkRequest(ctx: SdkContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const target = req.url ?? '/';
  const rawPath = target.split('?')[0]!;
  let path = rawPath;
  try {
    path = decodeURIComponent(rawPath);
  } catch {
    // a malformed escape stays as written; it simply matches no page
  }
  const route = ROUTES[path.toLowerCase()];
  const body = await readBody(req, POST_MAX_BYTES);
  if (!route) {
    sendGbk(res, 404, '<html><head><title>404 Not Found</title></head><body><h1>Not Found</h1></body></html>');
    return;
  }
  if (!ipAllowed(ctx.ipLimit(), req.socket.remoteAddress)) {
    sendGbk(res, 200, IP_LIMITED_TEXT);
    return;
  }
  const answer = route(ctx, queryParams(target), formParams(req.headers['content-type'], body));
  sendGbk(res, answer.status ?? 200, answer.text, answer.headers);
}
