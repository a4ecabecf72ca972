import type { MessageBody } from './message-types/index.ts';
import { bool, isoDate, parseJson } from '../db/sql.ts';

/** Who a broadcast goes to: everyone, and/or people, and/or departments (with their sub-departments). */
export interface Audience {
  all?: boolean;
  userIds?: number[];
  departmentIds?: number[];
  includeSubDepartments?: boolean;
}

/** A broadcast or system notice (广播 / 系统消息) as recipients sync it. */
export interface Broadcast {
  id: number;
  /** `plugin`: sent by a plugin (the RTX bridge's notifications, say), named as the plugin chose. */
  sender: { kind: 'admin' | 'user' | 'system' | 'plugin'; id: number | null; name: string };
  audience: Audience;
  onlineOnly: boolean;
  type: string;
  title: string | null;
  body: MessageBody;
  /** How long the client shows the pop-up, seconds; null keeps it until dismissed. */
  popupSeconds: number | null;
  recipientCount: number;
  createdAt: string;
}

export interface BroadcastRow {
  id: number | string;
  sender_kind: Broadcast['sender']['kind'];
  sender_id: number | null;
  sender_name: string;
  audience: unknown;
  online_only: unknown;
  type: string;
  title: string | null;
  body: unknown;
  popup_seconds: number | null;
  recipient_count: number | string;
  created_at: string | Date;
}

export function toBroadcast(r: BroadcastRow): Broadcast {
  return {
    id: Number(r.id),
    sender: { kind: r.sender_kind, id: r.sender_id === null ? null : Number(r.sender_id), name: r.sender_name },
    audience: parseJson<Audience>(r.audience),
    onlineOnly: bool(r.online_only),
    type: r.type,
    title: r.title,
    body: parseJson<MessageBody>(r.body),
    popupSeconds: r.popup_seconds === null ? null : Number(r.popup_seconds),
    recipientCount: Number(r.recipient_count),
    createdAt: isoDate(r.created_at),
  };
}
