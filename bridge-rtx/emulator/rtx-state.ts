import { faults, MAX_GROUP_MEMBERS } from './rtx-fault.ts';
import { RtxOrg, type RtxUser } from './rtx-org.ts';
import type { EnterpriseInfo } from './org-xml.ts';
import { buildRtxcData, isGuid, MODE_MULTI, MODE_SINGLE, newGuid, newImMessageId, normaliseGuid } from './rtxc-data.ts';

/** RTX presence as getstatus.php reports it. */
export type Presence = 0 | 1 | 2; // 0 offline, 1 online, 2 away

export type NotifyVia = 'SendNotify.cgi' | 'sendnotifybydepart.php' | 'sendnotifybygroup.php';

/** A notification pop-up (消息提醒) one RTX client received. */
export interface ReceivedNotification {
  id: number;
  title: string;
  msg: string;
  /** How long the pop-up stays, in ms; 0 = until closed. */
  delayTime: number;
  via: NotifyVia;
  broadcast: boolean;
  /** The user was offline; RTX keeps it and shows it at the next login. */
  whileOffline: boolean;
  at: string;
}

/** An IM one RTX client received. */
export interface ReceivedIm {
  id: number;
  key: string;
  mode: number;
  from: string;
  text: string;
  title?: string;
  disGroupId?: number;
  imMessageId: string;
  whileOffline: boolean;
  at: string;
}

export interface ConversationMessage {
  imMessageId: string;
  from: string;
  to: string[];
  text: string;
  /** `sdk`: through SendIM.cgi; `client`: typed by a (simulated) RTX user. */
  via: 'sdk' | 'client';
  at: string;
}

export interface Conversation {
  key: string;
  kind: 'single' | 'multi' | 'group';
  /** Account names, the initiator first. */
  members: string[];
  initiator: string;
  title?: string;
  disGroupId?: number;
  messages: ConversationMessage[];
}

/** An RTX 群 (DisGroup): a named, numbered group with a fixed member list and one conversation key. */
export interface DisGroup {
  id: number;
  name: string;
  key: string;
  members: string[];
}

export interface Inbox {
  notifications: ReceivedNotification[];
  ims: ReceivedIm[];
}

export interface SentIm {
  key: string;
  imMessageId: string | null;
  mode: number;
  /** Who got it; empty when no receiver exists (RTX then silently does nothing). */
  delivered: string[];
}

/** Called for every IM the server handles, with the RTXCData the application filter would see. */
export type ImObserver = (sender: string, receivers: string[], rtxcData: string, imMessageId: string) => void;

const FIRST_GROUP_ID = 10001; // DisGroup numbers seen in the wild start at 10001

export class RtxState {
  readonly org = new RtxOrg();
  enterprise: EnterpriseInfo;
  /** True while the emulated server is down: RTX clients cannot send. */
  down = false;
  private presence = new Map<string, Presence>();
  private inboxes = new Map<string, Inbox>();
  private conversations = new Map<string, Conversation>();
  private groups = new Map<number, DisGroup>();
  private nextGroupId = FIRST_GROUP_ID;
  private nextEntryId = 1;
  private imIds = new Set<string>();
  private observers: ImObserver[] = [];

  constructor(enterprise: EnterpriseInfo = { name: 'RTX' }) {
    this.enterprise = enterprise;
  }

  onIm(observer: ImObserver): void {
    this.observers.push(observer);
  }

  reset(): void {
    this.org.clear();
    this.presence.clear();
    this.inboxes.clear();
    this.conversations.clear();
    this.groups.clear();
    this.nextGroupId = FIRST_GROUP_ID;
    this.imIds.clear();
  }

  // ---- users and presence ------------------------------------------------------------------------------

  requireUser(field: string, uid: string): RtxUser {
    const u = this.org.user(uid);
    if (!u) throw faults.userNotFound(field, uid);
    return u;
  }

  presenceOf(uid: string): Presence {
    const u = this.requireUser('username', uid);
    return this.presence.get(u.uid.toLowerCase()) ?? 0;
  }

  setPresence(uid: string, status: Presence): void {
    const u = this.requireUser('uid', uid);
    this.presence.set(u.uid.toLowerCase(), status);
  }

  forgetUser(uid: string): void {
    const key = uid.toLowerCase();
    this.presence.delete(key);
    this.inboxes.delete(key);
  }

  inbox(uid: string): Inbox {
    const u = this.requireUser('uid', uid);
    return this.inboxFor(u);
  }

  private inboxFor(u: RtxUser): Inbox {
    const key = u.uid.toLowerCase();
    let box = this.inboxes.get(key);
    if (!box) {
      box = { notifications: [], ims: [] };
      this.inboxes.set(key, box);
    }
    return box;
  }

  private isOnline(u: RtxUser): boolean {
    return (this.presence.get(u.uid.toLowerCase()) ?? 0) !== 0;
  }

  // ---- notifications -----------------------------------------------------------------------------------

  /** Delivers one notification to each user; returns who got it. */
  notify(users: RtxUser[], n: { title: string; msg: string; delayTime: number; via: NotifyVia; broadcast?: boolean }): string[] {
    const at = new Date().toISOString();
    const seen = new Set<string>();
    const out: string[] = [];
    for (const u of users) {
      const key = u.uid.toLowerCase();
      if (seen.has(key)) continue;
      seen.add(key);
      this.inboxFor(u).notifications.push({
        id: this.nextEntryId++,
        title: n.title,
        msg: n.msg,
        delayTime: n.delayTime,
        via: n.via,
        broadcast: n.broadcast ?? false,
        whileOffline: !this.isOnline(u),
        at,
      });
      out.push(u.uid);
    }
    return out;
  }

  /** `all` or an empty list reaches everyone; unknown names in a list are skipped. */
  resolveReceiverList(list: string): { users: RtxUser[]; broadcast: boolean } {
    const trimmed = list.trim();
    if (trimmed === '' || trimmed.toLowerCase() === 'all') return { users: this.org.users(), broadcast: true };
    const users = splitNames(trimmed)
      .map((n) => this.org.user(n))
      .filter((u): u is RtxUser => !!u);
    return { users, broadcast: false };
  }

  /** Members of a department and of everything below it. */
  departmentMembers(nameOrPath: string): RtxUser[] {
    const dept = this.org.resolveDepartment(nameOrPath);
    if (!dept) throw faults.deptNotFound(nameOrPath);
    const ids = new Set(this.org.subtreeIds(dept.id));
    return this.org.users().filter((u) => u.departmentIds.some((id) => ids.has(id)));
  }

  onlineOnly(users: RtxUser[]): RtxUser[] {
    return users.filter((u) => this.isOnline(u));
  }

  // ---- groups ------------------------------------------------------------------------------------------

  listGroups(): DisGroup[] {
    return [...this.groups.values()];
  }

  group(idOrName: number | string): DisGroup | undefined {
    if (typeof idOrName === 'number' || /^\d+$/.test(idOrName)) {
      const byId = this.groups.get(Number(idOrName));
      if (byId) return byId;
    }
    return [...this.groups.values()].find((g) => g.name === String(idOrName));
  }

  createGroup(name: string, memberUids: string[]): DisGroup {
    const members = this.uniqueUsers('members', memberUids).map((u) => u.uid);
    if (members.length > MAX_GROUP_MEMBERS) throw faults.groupFull('members', members.length);
    const g: DisGroup = { id: this.nextGroupId++, name, key: newGuid(), members };
    this.groups.set(g.id, g);
    this.conversations.set(normaliseGuid(g.key), {
      key: g.key,
      kind: 'group',
      members: g.members,
      initiator: members[0] ?? '',
      title: name,
      disGroupId: g.id,
      messages: [],
    });
    return g;
  }

  addGroupMember(idOrName: number | string, uid: string): DisGroup {
    const g = this.group(idOrName);
    if (!g) throw faults.groupNotFound('group', String(idOrName));
    const u = this.requireUser('uid', uid);
    if (g.members.some((m) => m.toLowerCase() === u.uid.toLowerCase())) return g;
    if (g.members.length + 1 > MAX_GROUP_MEMBERS) throw faults.groupFull('uid', g.members.length + 1);
    g.members.push(u.uid);
    return g;
  }

  groupMembers(g: DisGroup): RtxUser[] {
    return g.members.map((m) => this.org.user(m)).filter((u): u is RtxUser => !!u);
  }

  // ---- IMs ---------------------------------------------------------------------------------------------

  conversation(key: string): Conversation | undefined {
    return this.conversations.get(normaliseGuid(key));
  }

  listConversations(): Conversation[] {
    return [...this.conversations.values()];
  }

  /**
   * What SendIM (and an RTX client) does: `receivers` get `text` in the window `key`. A new key opens a
   * conversation of the sender and the receivers; a known key posts into it (a 群's key reaches every
   * member, whatever `receivers` says). Receivers that do not exist are skipped without a word, as RTX does;
   * if none is left nothing happens at all.
   */
  sendIm(args: { sender: string; receivers: string[]; text: string; key?: string; title?: string; via: 'sdk' | 'client' }): SentIm {
    const sender = this.requireUser('sender', args.sender);
    let key = args.key?.trim() ?? '';
    if (key === '') key = newGuid();
    else if (!isGuid(key)) throw faults.badSessionId(key);
    const existing = this.conversation(key);

    let recipients: RtxUser[];
    if (existing?.kind === 'group') {
      const g = this.groups.get(existing.disGroupId!)!;
      if (!g.members.some((m) => m.toLowerCase() === sender.uid.toLowerCase())) throw faults.notMember(sender.uid, g.name);
      recipients = this.groupMembers(g).filter((u) => u !== sender);
    } else {
      recipients = [];
      for (const name of args.receivers) {
        const u = this.org.user(name);
        if (u && u !== sender && !recipients.includes(u)) recipients.push(u);
      }
    }
    if (recipients.length === 0) return { key: existing?.key ?? key, imMessageId: null, mode: existing ? modeOf(existing) : MODE_SINGLE, delivered: [] };

    let conv = existing;
    if (!conv) {
      const members = [sender.uid, ...recipients.map((u) => u.uid)];
      if (members.length > MAX_GROUP_MEMBERS) throw faults.groupFull('receivers', members.length);
      conv = { key, kind: members.length > 2 ? 'multi' : 'single', members, initiator: sender.uid, title: args.title, messages: [] };
      this.conversations.set(normaliseGuid(key), conv);
    } else if (conv.kind !== 'group') {
      const known = new Set(conv.members.map((m) => m.toLowerCase()));
      const added = [sender, ...recipients].filter((u) => !known.has(u.uid.toLowerCase())).map((u) => u.uid);
      if (conv.members.length + added.length > MAX_GROUP_MEMBERS) throw faults.groupFull('receivers', conv.members.length + added.length);
      conv.members.push(...added);
      // Bringing a third person into a one-to-one window turns it into a multi-person session.
      if (conv.members.length > 2) conv.kind = 'multi';
    }
    return this.deliver(conv, sender, recipients, args.text, args.via);
  }

  /** An RTX user typing into a 群. */
  sendToGroup(sender: string, idOrName: number | string, text: string): SentIm {
    const g = this.group(idOrName);
    if (!g) throw faults.groupNotFound('group', String(idOrName));
    return this.sendIm({ sender, receivers: [], text, key: g.key, via: 'client' });
  }

  private deliver(conv: Conversation, sender: RtxUser, recipients: RtxUser[], text: string, via: 'sdk' | 'client'): SentIm {
    let imMessageId = newImMessageId();
    while (this.imIds.has(imMessageId)) imMessageId = newImMessageId();
    this.imIds.add(imMessageId);
    const at = new Date().toISOString();
    const mode = modeOf(conv);
    const title = mode === MODE_MULTI ? conv.title : undefined;
    for (const u of recipients) {
      this.inboxFor(u).ims.push({
        id: this.nextEntryId++,
        key: conv.key,
        mode,
        from: sender.uid,
        text,
        title,
        disGroupId: conv.disGroupId,
        imMessageId,
        whileOffline: !this.isOnline(u),
        at,
      });
    }
    const to = recipients.map((u) => u.uid);
    conv.messages.push({ imMessageId, from: sender.uid, to, text, via, at });
    // The application filter sees every Tencent.RTX.IM request, including those the SDK injected.
    const rtxcData = buildRtxcData({ key: conv.key, mode, text, imMessageId, initiator: conv.initiator, title, disGroupId: conv.disGroupId });
    for (const o of this.observers) o(sender.uid, to, rtxcData, imMessageId);
    return { key: conv.key, imMessageId, mode, delivered: to };
  }

  private uniqueUsers(field: string, uids: string[]): RtxUser[] {
    const out: RtxUser[] = [];
    for (const uid of uids) {
      const u = this.org.user(uid);
      if (!u) throw faults.userNotFound(field, uid);
      if (!out.includes(u)) out.push(u);
    }
    return out;
  }
}

function modeOf(conv: Conversation): number {
  return conv.kind === 'single' ? MODE_SINGLE : MODE_MULTI;
}

/** RTX receiver lists: names separated by `,` or `;`, blanks ignored. */
export function splitNames(list: string): string[] {
  return list
    .split(/[,;]/)
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

