/**
 * The link between the RTX agent and the bridge plugin: one WebSocket, JSON text frames, version 1.
 *
 *   POST /rtx-bridge/v1/pair   {code, name}  →  {agentId, credential}     (once; the code is single-use)
 *   GET  /rtx-bridge/v1/link   WebSocket upgrade with `Authorization: Bearer <agentId>.<credential>`;
 *                              anything else is refused with 401 before a socket exists.
 *
 * Both directions are queues with acknowledgements, so nothing is lost across reconnects:
 * - Qiao → RTX: the plugin's outbox rows (`out`, numbered `seq`) are resent from where the agent says it
 *   has them on disk (`hello.received`, then `received`); `delivered` reports each one RTX accepted or refused.
 * - RTX → Qiao: the agent's journal entries (`in`, numbered `n`) are resent from the last `acked`; the
 *   plugin acknowledges only after the message is committed in Qiao, and de-duplicates by `im_message_id`.
 */

export const LINK_PROTOCOL_VERSION = 1;
export const PAIR_PATH = '/rtx-bridge/v1/pair';
export const LINK_PATH = '/rtx-bridge/v1/link';
/** Close codes the agent acts on. */
export const CLOSE_REPLACED = 4000;
export const CLOSE_REVOKED = 4001;
export const CLOSE_PROTOCOL = 4002;

/** An IM an RTX user sent, as the application filter copied it. */
export interface InboundIm {
  kind: 'im';
  imMessageId: string;
  sender: string;
  receivers: string[];
  key: string;
  mode: number;
  title?: string;
  disGroupId?: number;
  text: string;
  at: string;
}

/** A notification an OA/ERP system pushed into RTX through the agent's SDK pages. */
export interface InboundNotify {
  kind: 'notify';
  id: string;
  page: 'SendNotify.cgi' | 'sendnotifybydepart.php' | 'sendnotifybygroup.php';
  /** Account names; empty with `all` for `receiver=all` (or empty). */
  receivers: string[];
  all: boolean;
  department?: string;
  group?: string;
  onlineOnly: boolean;
  title: string;
  msg: string;
  delayMs: number;
  at: string;
}

export type InboundItem = InboundIm | InboundNotify;

/** A message committed in Qiao that RTX users should see. */
export interface OutboundIm {
  kind: 'im';
  qiaoMessageId: number;
  conversationId: string;
  /** The sender's RTX account, or null for a Qiao-only person (sent through the relay account). */
  sender: string | null;
  senderName: string;
  receivers: string[];
  /** Conversation key for a message sent as the person. */
  key: string;
  /** Conversation key for the relay account's window. */
  relayKey: string;
  text: string;
}

export interface Delivery {
  seq: number;
  ok: boolean;
  /** What RTX answered when it refused, or why the agent could not send. */
  error?: string;
  /** Characters GBK cannot hold were replaced (and the RTX user told so). */
  lossy?: boolean;
  /** Sent through the relay account rather than as the person. */
  viaRelay?: boolean;
}

export type AgentFrame =
  /**
   * `received`: the last `seq` the agent has on disk (resend after it). `deliveredUpTo`: the last `seq` RTX
   * accepted or refused; outcomes not reported before a crash are taken as delivered.
   */
  | { t: 'hello'; v: number; agent: { name: string; version: string }; received: number; deliveredUpTo: number; relayAccount: string | null; rtx: RtxHealth }
  | { t: 'in'; n: number; item: InboundItem }
  | { t: 'received'; upTo: number }
  | { t: 'delivered'; items: Delivery[] }
  | { t: 'org'; runId: number; status: 'xml' | 'unchanged' | 'error'; hash?: string; data?: string; error?: string }
  | { t: 'presence'; states: Record<string, number>; full: boolean }
  | { t: 'health'; rtx: RtxHealth; stats: AgentStats }
  | { t: 'credResult'; id: number; ok: boolean; error?: string };

export type PluginFrame =
  | { t: 'welcome'; v: number; agentId: string; presenceIntervalMs: number }
  | { t: 'out'; seq: number; item: OutboundIm }
  | { t: 'acked'; upTo: number }
  | { t: 'orgRequest'; runId: number; ifNotHash: string | null }
  | { t: 'qiaoPresence'; online: string[] }
  | { t: 'cred'; id: number; uid: string; password: string | null };

/** How the agent sees RTX: `up`, `down` (unreachable / 503), or `ip-limited` (SDKProperty.xml refuses it). */
export interface RtxHealth {
  sdk: 'up' | 'down' | 'ip-limited' | 'unknown';
  host: 'up' | 'down' | 'unknown';
  detail: string | null;
}

export interface AgentStats {
  toRtxPending: number;
  toQiaoPending: number;
  feedReceived: number;
  duplicatesDropped: number;
  loopsPrevented: number;
  notificationsRelayed: number;
}
