/**
 * @qiao/client — the typed SDK of Qiao's client API.
 *
 *   const client = await QiaoClient.login({ baseUrl: 'http://qiao:7080' }, { account, password, deviceType: 'web', deviceId });
 *   client.on('item', (item) => render(item));        // every inbox entry, once, in order
 *   await client.connect();                            // WebSocket + catch-up, reconnects by itself
 *   const c = await client.conversations.create({ type: 'single', members: [bobId] });
 *   await client.messages.send(c.id, { type: 'text', body: { text: 'hi' } });
 */
export { backoff, QiaoClient, type ClientOptions, type SendRetry } from './client.ts';
export { QiaoApiError } from './errors.ts';
export type { ClientEvents } from './events.ts';
export type { DownloadOptions, UploadOptions } from './files.ts';
export type { SocketState } from './socket.ts';
export { memoryCursor, type CursorStore } from './sync.ts';
export type * from './types.ts';
