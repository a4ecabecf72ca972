import type { QiaoApiError } from './errors.ts';
import type { ReadyFrame, SyncItem, UserPresence } from './types.ts';

/** What a connected client tells its application (`client.on(event, listener)`). */
export interface ClientEvents extends Record<string, unknown> {
  /** One inbox entry, each exactly once and in order; the cursor moves past it once every listener is done. */
  item: SyncItem;
  /** A catch-up reached the end of the inbox. */
  synced: { cursor: number; head: number };
  /** Entries after the cursor were pruned on the server: reload conversations and messages, then carry on. */
  reset: { from: number; to: number };
  /** The socket is up and authenticated (first connect and every reconnect). */
  connected: ReadyFrame;
  /** The socket went down; `reconnectInMs` is null when the client will not reconnect (session ended, or you disconnected). */
  disconnected: { code: number; reason: string; reconnectInMs: number | null };
  presence: UserPresence;
  /** The admin ordered this device to erase its local data; log out (`client.auth.logout()`) when done. */
  wipe: Record<string, never>;
  /** The session ended (logged out elsewhere, kicked, password changed, account disabled…): log in again. */
  revoked: { reason: string };
  error: Error | QiaoApiError;
}
