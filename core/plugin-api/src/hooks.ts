/** The message a `beforeMessageStored` hook sees. A plugin may change only `body`. */
export interface PendingMessage {
  conversationId: string;
  senderId: number;
  clientMsgId: string;
  type: string;
  body: Record<string, unknown>;
}

export type BeforeMessageStoredResult =
  | { outcome: 'allow' }
  | { outcome: 'modify'; body: Record<string, unknown> }
  | { outcome: 'reject'; reason: string };

/** One committed change from the durable log, as `afterMessageStored` / `onOrgChanged` receive it. */
export interface LoggedEvent<P = unknown> {
  seq: number;
  topic: string;
  subject: string | null;
  payload: P;
  createdAt: string;
}

export interface StoredMessage extends PendingMessage {
  id: number;
  createdAt: string;
}
