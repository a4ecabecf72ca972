import type { BROADCAST_TYPES } from '../../im/broadcasts.ts';
import { CONVERSATION_TYPES } from '../../im/conversations.ts';
import { FILE_ID_PATTERN } from '../../im/message-types/common.ts';
import { MESSAGE_TYPES } from '../../im/message-types/index.ts';
import { SHA256_PATTERN, UPLOAD_ID_PATTERN } from '../../im/files/file-store.ts';
import type { FileKind } from '../../im/settings.ts';

/**
 * JSON Schemas of the client API: fastify validates requests with them and the OpenAPI document is made
 * from them. Response schemas are documentation only (answers are serialised as they are, never filtered).
 */

// Copied rather than imported so a gateway-only process does not load storage code; the checks below
// fail the typecheck when im's lists change.
const KINDS = ['image', 'file', 'voice'] as const;
const BROADCASTS = ['system', 'text', 'link', 'card'] as const;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
export const LISTS_MATCH_IM: [Same<(typeof KINDS)[number], FileKind>, Same<(typeof BROADCASTS)[number], (typeof BROADCAST_TYPES)[number]>] = [true, true];

export const id = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER } as const;
export const seq = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;
export const conversationId = { type: 'string', minLength: 1, maxLength: 64, description: '`s:<a>:<b>` for 1:1 chats, `d:…` discussion groups, `g:…` groups' } as const;
export const fileId = { type: 'string', pattern: FILE_ID_PATTERN.source, description: 'f + 24 hex digits' } as const;
export const uploadId = { type: 'string', pattern: UPLOAD_ID_PATTERN.source, description: 'u + 24 hex digits' } as const;
export const idList = (max: number) =>
  ({ type: 'string', pattern: `^[1-9][0-9]{0,15}(,[1-9][0-9]{0,15}){0,${max - 1}}$`, description: `comma-separated ids, at most ${max}` }) as const;
const isoTime = { type: 'string', format: 'date-time' } as const;
const anyObject = { type: 'object', additionalProperties: true } as const;

export const error = {
  type: 'object',
  description: 'Every refusal. `field` names the request field at fault, when one is.',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: { code: { type: 'string', example: 'QIAO_VALIDATION' }, message: { type: 'string' }, field: { type: 'string' } },
    },
  },
} as const;

export const message = {
  type: 'object',
  description: 'A committed message. `id` is its place in the global commit order.',
  properties: {
    id,
    conversationId,
    senderId: { type: 'integer', minimum: 0, description: '0 when an app sent it (see senderApp)' },
    senderApp: { type: 'string', description: "The app that sent it, into a person's chat with the app" },
    clientMsgId: { type: 'string' },
    type: { type: 'string', enum: [...MESSAGE_TYPES] },
    body: anyObject,
    createdAt: isoTime,
    receipt: { type: 'boolean' },
    recalled: { type: 'object', properties: { at: isoTime, by: id } },
  },
} as const;

const member = { type: 'object', properties: { userId: id, role: { type: 'string', enum: ['owner', 'admin', 'member'] } } } as const;
const announcement = { type: ['object', 'null'], properties: { title: { type: 'string' }, text: { type: 'string' }, messageId: id, by: id, at: isoTime } } as const;

export const conversation = {
  type: 'object',
  properties: {
    id: conversationId,
    type: { type: 'string', enum: [...CONVERSATION_TYPES] },
    name: { type: ['string', 'null'] },
    createdBy: { type: ['integer', 'null'] },
    createdAt: isoTime,
    members: { type: 'array', items: member },
    permissions: { type: ['object', 'null'], additionalProperties: true },
    announcement,
    departmentId: { type: ['integer', 'null'] },
    includeSubDepartments: { type: 'boolean' },
    dissolvedAt: { type: ['string', 'null'], format: 'date-time' },
  },
} as const;

export const conversationSummary = {
  type: 'object',
  properties: {
    id: conversationId,
    type: conversation.properties.type,
    name: { type: ['string', 'null'] },
    role: member.properties.role,
    memberCount: { type: 'integer' },
    lastMessageId: seq,
    lastReadId: seq,
    unread: { type: 'integer' },
    dissolvedAt: { type: ['string', 'null'], format: 'date-time' },
    announcement,
  },
} as const;

export const syncItem = {
  type: 'object',
  properties: {
    seq: id,
    kind: { type: 'string', enum: ['message', 'recall', 'read', 'conversation', 'broadcast', 'org'] },
    conversationId: { type: ['string', 'null'] },
    createdAt: isoTime,
    data: { description: 'message: the message as it is now; broadcast: the broadcast; others: what changed' },
  },
} as const;

export const syncPage = {
  type: 'object',
  properties: {
    items: { type: 'array', items: syncItem },
    last: { ...seq, description: 'seq of the last item returned (or `since` when none): the next `since`' },
    head: { ...seq, description: 'the newest seq of your inbox' },
    hasMore: { type: 'boolean' },
    reset: { type: 'boolean', description: 'entries after `since` were pruned: reload conversations, then continue from `last`' },
  },
} as const;

export const fileInfo = {
  type: 'object',
  properties: {
    id: fileId,
    name: { type: 'string' },
    size: { type: 'integer' },
    kind: { type: 'string', enum: [...KINDS] },
    mime: { type: ['string', 'null'] },
    sha256: { type: 'string' },
    ownerId: id,
    conversationId: { type: ['string', 'null'] },
    inSpace: { type: 'boolean' },
    createdAt: isoTime,
  },
} as const;

export const beginUpload = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'size', 'sha256', 'kind'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 255, description: 'a file name, not a path' },
    size: { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER },
    sha256: { type: 'string', pattern: SHA256_PATTERN.source, description: '64 lower-case hex digits of the whole content' },
    kind: { type: 'string', enum: [...KINDS] },
    mime: { type: 'string', maxLength: 100, pattern: '^[\\w.+-]+/[\\w.+-]+$' },
    conversationId,
    space: { type: 'boolean', description: "store it in the group's space (counted against its quota)" },
  },
} as const;

export const broadcast = {
  type: 'object',
  additionalProperties: false,
  required: ['audience', 'type', 'body'],
  properties: {
    audience: {
      type: 'object',
      additionalProperties: false,
      properties: {
        all: { type: 'boolean' },
        userIds: { type: 'array', items: id, maxItems: 100_000 },
        departmentIds: { type: 'array', items: id, maxItems: 10_000 },
        includeSubDepartments: { type: 'boolean' },
      },
    },
    onlineOnly: { type: 'boolean', description: 'only people connected now' },
    type: { type: 'string', enum: [...BROADCASTS] },
    title: { type: 'string', maxLength: 200 },
    body: anyObject,
    popupSeconds: { type: ['integer', 'null'], minimum: 6, maximum: 3600, description: 'how long the pop-up shows; null until dismissed' },
  },
} as const;

export const presence = {
  type: 'object',
  properties: {
    userId: id,
    status: { type: 'string', enum: ['online', 'away', 'offline'] },
    devices: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          deviceType: { type: 'string', description: '`external` for the status another IM system (e.g. RTX) reports' },
          deviceId: { type: 'string' },
          status: { type: 'string', enum: ['online', 'away'] },
          since: isoTime,
          source: { type: 'string', description: 'external entries only: the system reporting it (e.g. `rtx`)' },
        },
      },
    },
  },
} as const;

export const identity = {
  type: 'object',
  properties: {
    userId: id,
    account: { type: 'string' },
    sessionId: id,
    deviceType: { type: 'string' },
    deviceId: { type: 'string' },
    wipe: { type: 'boolean', description: 'the admin ordered this device to erase its local data, then log out' },
    mustChangePassword: { type: 'boolean' },
  },
} as const;

/** An object of the properties given, nothing else, those in `required` required. */
export function object(properties: Record<string, object>, required: string[] = []): object {
  return { type: 'object', additionalProperties: false, required, properties };
}
