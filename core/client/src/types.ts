/**
 * What the client API sends and answers (see GET /v1/openapi.json on any gateway). Kept here, not imported
 * from the server, so the SDK has no dependency on the platform's code and runs in browsers too.
 */

export type DeviceType = 'windows' | 'mac' | 'linux' | 'android' | 'ios' | 'web';

export interface LoginCredentials {
  account: string;
  password: string;
  deviceType: DeviceType;
  deviceId: string;
  deviceName?: string;
}

export type LoginResult =
  | { token: string; userId: number; sessionId: number; expiresAt: string; mustChangePassword: boolean }
  | { needSmsCode: true; challenge: string; expiresAt: string; mobile: string };

export interface Identity {
  userId: number;
  account: string;
  sessionId: number;
  deviceType: string;
  deviceId: string;
  wipe: boolean;
  mustChangePassword: boolean;
}

/** `app`: a person's chat with an open-API app (open it with `apps.openChat`). */
export type ConversationType = 'single' | 'discussion' | 'group' | 'department' | 'app';
export type Role = 'owner' | 'admin' | 'member';

export interface Announcement {
  title: string;
  text: string;
  messageId: number;
  by: number;
  at: string;
}

export interface Conversation {
  id: string;
  type: ConversationType;
  name: string | null;
  createdBy: number | null;
  createdAt: string;
  members: Array<{ userId: number; role: Role }>;
  permissions: Record<string, unknown> | null;
  announcement: Announcement | null;
  departmentId: number | null;
  includeSubDepartments: boolean;
  dissolvedAt: string | null;
}

export interface ConversationSummary {
  id: string;
  type: ConversationType;
  name: string | null;
  role: Role;
  memberCount: number;
  lastMessageId: number;
  lastReadId: number;
  unread: number;
  dissolvedAt: string | null;
  announcement: Announcement | null;
}

export type MessageType = 'text' | 'rich' | 'image' | 'file' | 'voice' | 'link' | 'card' | 'system' | 'announcement' | 'vote' | 'forward';

export interface StoredMessage {
  /** The server sequence number: the message's place in the commit order. */
  id: number;
  conversationId: string;
  senderId: number;
  clientMsgId: string;
  type: MessageType;
  body: Record<string, unknown>;
  createdAt: string;
  receipt?: true;
  recalled?: { at: string; by: number };
  /** The app that sent it into your chat with the app; `senderId` is then 0. */
  senderApp?: string;
}

export interface AppMenuItem {
  name: string;
  type: 'url' | 'click';
  url?: string | null;
  key?: string | null;
  children?: AppMenuItem[];
}

/** An app in the client's app panel. */
export interface AppSummary {
  appId: string;
  name: string;
  description: string | null;
  logo: string | null;
  hasHome: boolean;
  menus: AppMenuItem[];
}

export interface OutgoingMessage {
  type: MessageType;
  body: Record<string, unknown>;
  /** Generated when absent; give your own to retry a send across restarts of your app. */
  clientMsgId?: string;
  receipt?: boolean;
}

export type SyncKind = 'message' | 'recall' | 'read' | 'conversation' | 'broadcast' | 'org';

export interface SyncItem {
  seq: number;
  kind: SyncKind;
  conversationId: string | null;
  createdAt: string;
  /** message: the message as it is now; broadcast: the broadcast; others: what changed. */
  data: unknown;
}

export interface SyncPage {
  items: SyncItem[];
  last: number;
  head: number;
  hasMore: boolean;
  reset: boolean;
}

export interface ReadResult {
  conversationId: string;
  lastReadId: number;
  changed: boolean;
}

export interface Receipt {
  messageId: number;
  conversationId: string;
  total: number;
  readCount: number;
  read: number[];
  unread: number[];
}

export interface SearchQuery {
  keyword?: string;
  conversationId?: string;
  senderId?: number;
  from?: string;
  to?: string;
  before?: number;
  limit?: number;
}

export type FileKind = 'image' | 'file' | 'voice';

export interface FileInfo {
  id: string;
  name: string;
  size: number;
  kind: FileKind;
  mime: string | null;
  sha256: string;
  ownerId: number;
  conversationId: string | null;
  inSpace: boolean;
  createdAt: string;
}

export interface BeginResult {
  uploadId: string | null;
  received: number;
  file: FileInfo | null;
  deduplicated: boolean;
}

export interface GroupSpace {
  conversationId: string;
  quota: number;
  used: number;
  files: FileInfo[];
}

export interface BroadcastInput {
  audience: { all?: boolean; userIds?: number[]; departmentIds?: number[]; includeSubDepartments?: boolean };
  onlineOnly?: boolean;
  type: 'system' | 'text' | 'link' | 'card';
  title?: string;
  body: Record<string, unknown>;
  popupSeconds?: number | null;
}

export type PresenceStatus = 'online' | 'away' | 'offline';

export interface UserPresence {
  userId: number;
  status: PresenceStatus;
  /** A device of the person's; `deviceType: 'external'` with `source` is presence another system reports (e.g. RTX). */
  devices: Array<{ deviceType: string; deviceId: string; status: 'online' | 'away'; since: string; source?: string }>;
}

export interface ReadyFrame {
  type: 'ready';
  userId: number;
  account: string;
  sessionId: number;
  deviceType: string;
  deviceId: string;
  head: number | null;
  heartbeatMs: number;
  limits: { maxFrameBytes: number; burst: number; perSecond: number; watchLimit?: number };
}

export type ServerFrame =
  | ReadyFrame
  | { type: 'sync'; head: number | null }
  | { type: 'presence'; users: UserPresence[]; ref?: string | number }
  | { type: 'wipe' }
  | { type: 'revoked'; reason: string }
  | { type: 'pong'; at: string; ref?: string | number }
  | { type: 'ack'; ref?: string | number }
  | { type: 'error'; code: string; message: string; field?: string; ref?: string | number };
