import { Emitter } from './emitter.ts';
import { QiaoApiError } from './errors.ts';
import type { ClientEvents } from './events.ts';
import { FilesApi } from './files.ts';
import { HttpClient } from './http.ts';
import { SocketConnection, type SocketState } from './socket.ts';
import { memoryCursor, SyncEngine, type CursorStore } from './sync.ts';
import type {
  AppSummary,
  BroadcastInput,
  Conversation,
  ConversationSummary,
  Identity,
  LoginCredentials,
  LoginResult,
  OutgoingMessage,
  ReadResult,
  ReadyFrame,
  Receipt,
  SearchQuery,
  StoredMessage,
  SyncPage,
  UserPresence,
} from './types.ts';

export interface ClientOptions {
  /** The gateway, e.g. `http://qiao.example.com:7080`. */
  baseUrl: string;
  token?: string;
  /** Where the sync position is kept between runs (default: memory only). */
  cursor?: CursorStore;
  /** Entries per sync page (default 500). */
  syncPageSize?: number;
  reconnect?: { initialMs?: number; maxMs?: number };
  /** How sends are retried on transient failures (same clientMsgId, so never stored twice). */
  sendRetry?: Partial<SendRetry>;
  requestTimeoutMs?: number;
  fetch?: typeof fetch;
  WebSocket?: typeof WebSocket;
}

/** Retries of a send after a transient failure: `attempts` more tries, waiting delayMs·2ⁿ (at most maxDelayMs). */
export interface SendRetry {
  attempts: number;
  delayMs: number;
  maxDelayMs: number;
}

const enc = encodeURIComponent;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Exponential backoff with full jitter: attempt n waits a random time up to min(max, initial·2ⁿ). */
export function backoff(initialMs: number, maxMs: number): (attempt: number) => number {
  return (attempt) => Math.round(Math.random() * Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 20))) + Math.min(initialMs, 50);
}

function newClientMsgId(): string {
  return crypto.randomUUID();
}

/**
 * The Qiao client SDK: every client-API call, typed, and `connect()`, which keeps a WebSocket open and, on
 * every (re)connect and every push, catches up through `sync` from the last position it handed over, so
 * the application receives each inbox entry exactly once and in order (`on('item', …)`).
 */
export class QiaoClient {
  readonly baseUrl: string;
  token: string | null;
  readonly http: HttpClient;
  readonly files: FilesApi;
  readonly #events = new Emitter<ClientEvents>();
  readonly #sync: SyncEngine;
  readonly #socket: SocketConnection;
  readonly #sendRetry: SendRetry;
  #wiped = false;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.token = options.token ?? null;
    this.http = new HttpClient({
      baseUrl: this.baseUrl,
      token: () => this.token,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      timeoutMs: options.requestTimeoutMs ?? 30_000,
      onWipe: () => {
        if (this.#wiped) return;
        this.#wiped = true;
        this.#events.emit('wipe', {});
      },
    });
    this.files = new FilesApi(this.http);
    const wait = backoff(options.reconnect?.initialMs ?? 250, options.reconnect?.maxMs ?? 30_000);
    this.#sendRetry = { attempts: options.sendRetry?.attempts ?? 3, delayMs: options.sendRetry?.delayMs ?? 200, maxDelayMs: options.sendRetry?.maxDelayMs ?? 5000 };
    this.#socket = new SocketConnection({
      url: `${this.baseUrl.replace(/^http/i, 'ws')}/v1/ws`,
      token: () => this.token,
      WebSocket: options.WebSocket ?? globalThis.WebSocket,
      events: this.#events,
      backoff: wait,
      onReady: () => void this.#sync.catchUp().catch(() => undefined),
      onSync: (head) => this.#sync.nudge(head),
    });
    this.#sync = new SyncEngine({
      http: this.http,
      store: options.cursor ?? memoryCursor(),
      pageSize: options.syncPageSize ?? 500,
      events: this.#events,
      connected: () => this.#socket.state === 'connected',
      retryMs: wait,
    });
    this.#events.on('wipe', () => void (this.#wiped = true));
  }

  /** Logs in and answers a client holding the new token (throws if the SMS step is on: use `auth.login`). */
  static async login(options: ClientOptions, credentials: LoginCredentials): Promise<QiaoClient> {
    const client = new QiaoClient(options);
    const r = await client.auth.login(credentials);
    if (!('token' in r)) throw new QiaoApiError(200, 'QIAO_SMS_CODE_NEEDED', 'two-step login is on: call client.auth.login again with { challenge, smsCode }');
    return client;
  }

  on<K extends keyof ClientEvents>(event: K, listener: (value: ClientEvents[K]) => void | Promise<void>): () => void {
    return this.#events.on(event, listener);
  }

  once<K extends keyof ClientEvents>(event: K): Promise<ClientEvents[K]> {
    return this.#events.once(event);
  }

  /** The sequence number of the last inbox entry handed over. */
  get cursor(): number {
    return this.#sync.cursor;
  }

  get state(): SocketState {
    return this.#socket.state;
  }

  /** Opens the WebSocket (reconnecting by itself from then on) and resolves once it is authenticated. */
  connect(): Promise<ReadyFrame> {
    return this.#socket.open();
  }

  /** Closes the WebSocket and stops reconnecting. */
  disconnect(): void {
    this.#socket.close();
    this.#sync.stop();
  }

  /** Reads the inbox from the cursor to its end now, emitting `item`s; resolves when caught up. */
  catchUp(): Promise<void> {
    return this.#sync.catchUp();
  }

  me(): Promise<Identity> {
    return this.http.request('GET', '/v1/me');
  }

  readonly auth = {
    login: async (credentials: LoginCredentials | { challenge: string; smsCode: string; deviceType: string; deviceId: string }): Promise<LoginResult> => {
      const r = await this.http.request<LoginResult>('POST', '/v1/auth/login', { body: credentials });
      if ('token' in r) this.token = r.token;
      return r;
    },
    logout: async (): Promise<void> => {
      await this.http.request('POST', '/v1/auth/logout');
      this.disconnect();
      this.token = null;
    },
    sessions: () => this.http.request<{ sessions: Array<Record<string, unknown>> }>('GET', '/v1/auth/sessions'),
    changePassword: (oldPassword: string, newPassword: string) => this.http.request('POST', '/v1/auth/password', { body: { oldPassword, newPassword } }),
  };

  readonly conversations = {
    list: async (): Promise<ConversationSummary[]> => (await this.http.request<{ conversations: ConversationSummary[] }>('GET', '/v1/conversations')).conversations,
    /** A 1:1 chat with `members: [otherUserId]` (the same one every time), or a discussion group. */
    create: (input: { type: 'single' | 'discussion'; members: number[]; name?: string }) => this.http.request<Conversation>('POST', '/v1/conversations', { body: input }),
    get: (id: string) => this.http.request<Conversation>('GET', `/v1/conversations/${enc(id)}`),
    rename: (id: string, name: string) => this.http.request('PATCH', `/v1/conversations/${enc(id)}`, { body: { name } }),
    invite: (id: string, userIds: number[]) => this.http.request('POST', `/v1/conversations/${enc(id)}/members`, { body: { userIds } }),
    remove: (id: string, userIds: number[]) => this.http.request('POST', `/v1/conversations/${enc(id)}/members/remove`, { body: { userIds } }),
    leave: (id: string) => this.http.request('POST', `/v1/conversations/${enc(id)}/leave`),
    transfer: (id: string, toUserId: number) => this.http.request('POST', `/v1/conversations/${enc(id)}/transfer`, { body: { toUserId } }),
    dissolve: (id: string) => this.http.request('POST', `/v1/conversations/${enc(id)}/dissolve`),
  };

  readonly messages = {
    /**
     * Sends a message; resolves with the stored message once it is committed. Transient failures are
     * retried with the same clientMsgId, so a message is never stored twice.
     */
    send: async (conversationId: string, message: OutgoingMessage, retry: Partial<SendRetry> = {}): Promise<StoredMessage> => {
      const body = { clientMsgId: message.clientMsgId ?? newClientMsgId(), type: message.type, body: message.body, ...(message.receipt ? { receipt: true } : {}) };
      const r = { ...this.#sendRetry, ...retry };
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.http.request<StoredMessage>('POST', `/v1/conversations/${enc(conversationId)}/messages`, { body });
        } catch (err) {
          if (!(err instanceof QiaoApiError) || !err.transient || attempt >= r.attempts) throw err;
          await sleep(Math.min(r.maxDelayMs, r.delayMs * 2 ** attempt));
        }
      }
    },
    list: async (conversationId: string, q: { after?: number; before?: number; limit?: number } = {}) =>
      this.http.request<{ messages: StoredMessage[]; last: number }>('GET', `/v1/conversations/${enc(conversationId)}/messages`, { query: q }),
    recall: (messageId: number) => this.http.request<StoredMessage>('POST', `/v1/messages/${messageId}/recall`),
    search: (q: SearchQuery) => this.http.request<{ messages: StoredMessage[]; nextBefore: number | null }>('GET', '/v1/messages/search', { query: { ...q } }),
    read: (conversationId: string, upTo: number) => this.http.request<ReadResult>('POST', `/v1/conversations/${enc(conversationId)}/read`, { body: { upTo } }),
    receipt: (messageId: number) => this.http.request<Receipt>('GET', `/v1/messages/${messageId}/receipt`),
    receiptCounts: async (conversationId: string, messageIds: number[]) =>
      (
        await this.http.request<{ receipts: Array<{ messageId: number; total: number; readCount: number }> }>('GET', `/v1/conversations/${enc(conversationId)}/receipts`, {
          query: { messageIds: messageIds.join(',') },
        })
      ).receipts,
  };

  /** The raw inbox calls; `connect()` and `catchUp()` use them for you. */
  readonly inbox = {
    read: (since: number, limit?: number) => this.http.request<SyncPage>('GET', '/v1/sync', { query: { since, limit } }),
    head: async () => (await this.http.request<{ head: number }>('GET', '/v1/sync/head')).head,
  };

  /** Open-API apps: the app panel, SSO into an app's home page, chats with apps and their menus. */
  readonly apps = {
    list: async (deviceType: 'desktop' | 'mobile' = 'desktop') => (await this.http.request<{ apps: AppSummary[] }>('GET', '/v1/apps', { query: { deviceType } })).apps,
    /** A fresh 3-minute identify token and the app's home URL with `$TOKEN$` filled in. */
    home: (appId: string) => this.http.request<{ token: string; expiresAt: string; url: string | null }>('POST', `/v1/apps/${enc(appId)}/sso-token`),
    /** Your chat with the app (created the first time); send into it with `messages.send`. */
    openChat: (appId: string) => this.http.request<Conversation>('POST', `/v1/apps/${enc(appId)}/chat`),
    /** A click on the app's menu: `click` items are passed to the app, `url` items answer the URL to open. */
    /** Hands picked messages to the app (会话消息转出); open the answered `url`. */
    exportMessages: (appId: string, input: { conversationId: string; messageIds: number[]; key?: string }) =>
      this.http.request<{ fileId: string; messages: number; url: string }>('POST', `/v1/apps/${enc(appId)}/session-export`, { body: input }),
    menu: (appId: string, key: string) => this.http.request<{ packageId?: string; url?: string }>('POST', `/v1/apps/${enc(appId)}/menu`, { body: { key } }),
  };

  readonly broadcasts = {
    send: (input: BroadcastInput) => this.http.request<Record<string, unknown>>('POST', '/v1/broadcasts', { body: input }),
  };

  readonly org = {
    snapshot: () => this.http.request<Record<string, unknown>>('GET', '/v1/org/snapshot'),
    changes: (since: number) => this.http.request<Record<string, unknown>>('GET', '/v1/org/changes', { query: { since } }),
    user: (userId: number) => this.http.request<Record<string, unknown>>('GET', `/v1/org/users/${userId}`),
    avatar: async (userId: number): Promise<{ contentType: string; bytes: Uint8Array }> => {
      const res = await this.http.request<Response>('GET', `/v1/org/users/${userId}/avatar`, { raw: true });
      return { contentType: res.headers.get('content-type') ?? 'application/octet-stream', bytes: new Uint8Array(await res.arrayBuffer()) };
    },
  };

  readonly presence = {
    get: async (userIds: number[]) => (await this.http.request<{ users: UserPresence[] }>('GET', '/v1/presence', { query: { userIds: userIds.join(',') } })).users,
    /** This device's status, over the socket. */
    set: async (status: 'online' | 'away'): Promise<void> => {
      await this.#socket.request({ type: 'presence', status });
    },
    /** Whose presence changes to receive (`on('presence', …)`); answers their presence now. Replaces the previous list. */
    watch: async (userIds: number[]): Promise<UserPresence[]> => {
      const f = await this.#socket.request({ type: 'watch', userIds });
      return f.type === 'presence' ? f.users : [];
    },
  };
}
