/**
 * Errors as the RTX server words them. The SDK scripts print the COM error text (SendNotify.cgi adds
 * `<br>`), so these strings are what a caller of the HTTP SDK reads. Tencent never published the exact
 * texts; the wording below is the emulator's (see README "Assumed"), except the IP-limit text.
 */
export type RtxFaultKind = 'not-found' | 'bad-password' | 'bad-session' | 'group-full' | 'not-member' | 'server-down';

export class RtxFault extends Error {
  readonly kind: RtxFaultKind;
  /** Which input was at fault (`sender`, `sessionid`, …), for the control API. */
  readonly field: string;
  constructor(kind: RtxFaultKind, field: string, text: string) {
    super(text);
    this.name = 'RtxFault';
    this.kind = kind;
    this.field = field;
  }
}

/** IPLimit.php's answer to a caller not listed in SDKProperty.xml (HTTP 200). */
export const IP_LIMITED_TEXT = 'IP 受限，请联系管理员开放您的 IP';

/** RTX caps a discussion group (multi-person session or 群) at 80 members. */
export const MAX_GROUP_MEMBERS = 80;

export const faults = {
  userNotFound: (field: string, uid: string) => new RtxFault('not-found', field, `用户[${uid}]不存在`),
  badPassword: (uid: string) => new RtxFault('bad-password', 'pwd', `用户[${uid}]密码错误`),
  badSessionId: (id: string) => new RtxFault('bad-session', 'sessionid', `会话ID[${id}]格式错误，应为 {GUID}`),
  groupFull: (field: string, count: number) =>
    new RtxFault('group-full', field, `讨论组成员不能超过${MAX_GROUP_MEMBERS}人（当前${count}人）`),
  notMember: (uid: string, group: string) => new RtxFault('not-member', 'sender', `用户[${uid}]不是群[${group}]的成员`),
  deptNotFound: (name: string) => new RtxFault('not-found', 'receiverdepart', `部门[${name}]不存在`),
  groupNotFound: (field: string, name: string) => new RtxFault('not-found', field, `群[${name}]不存在`),
  serverDown: () => new RtxFault('server-down', 'server', 'RTX 服务器未启动'),
};
