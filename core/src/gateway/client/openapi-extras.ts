import { error } from './schemas.ts';

/**
 * Parts of the OpenAPI document not generated from this plugin's route schemas: the auth routes (their
 * own plugin, routes/auth.ts) and the WebSocket, which OpenAPI cannot describe as a path.
 */

export const SOCKET_DOC =
  'WebSocket: GET /v1/ws (token as `?token=` or `Authorization`, or in a first frame `{"type":"auth","token":…}`). ' +
  'The server answers `{"type":"ready",userId,sessionId,head,heartbeatMs,limits}`, then pushes `{"type":"sync","head"}` whenever your inbox grows ' +
  '(call GET /v1/sync from your cursor), `{"type":"presence","users"}` for people you `watch`, `{"type":"wipe"}` and `{"type":"revoked","reason"}`. ' +
  'Send `{"type":"ping"}` (→ pong), `{"type":"presence","status":"online"|"away"}` and `{"type":"watch","userIds":[…]}`. ' +
  'Bad frames get `{"type":"error",code,message,field}`; frames are rate-limited per socket (a flood is closed with 1008), ' +
  'an ended session is closed with 4401, a frame over 1 MiB with 1009.';

const json = (schema: object) => ({ content: { 'application/json': { schema } } });
const refusal = (description: string) => ({ description, ...json(error) });
const bearer = [{ bearer: [] }];
const device = {
  deviceType: { type: 'string', enum: ['windows', 'mac', 'linux', 'android', 'ios', 'web'] },
  deviceId: { type: 'string', maxLength: 128 },
  deviceName: { type: 'string', maxLength: 128 },
};

export const AUTH_PATHS: Record<string, unknown> = {
  '/v1/auth/login': {
    post: {
      tags: ['auth'],
      summary: 'Log in from a device; answers the session token',
      description: 'With two-step login on, the first answer is `{ needSmsCode, challenge }`: call again with `{ challenge, smsCode }` and the same device.',
      requestBody: json({
        type: 'object',
        properties: { account: { type: 'string' }, password: { type: 'string' }, challenge: { type: 'string' }, smsCode: { type: 'string' }, ...device },
        required: ['deviceType', 'deviceId'],
      }),
      responses: {
        200: {
          description: 'logged in (or the SMS step)',
          ...json({ type: 'object', properties: { token: { type: 'string' }, userId: { type: 'integer' }, sessionId: { type: 'integer' }, expiresAt: { type: 'string' }, mustChangePassword: { type: 'boolean' } } }),
        },
        401: refusal('wrong account or password'),
        403: refusal('locked, disabled, resigned, not authorised, device or IP not allowed'),
        422: refusal('a field is invalid'),
      },
    },
  },
  '/v1/auth/logout': {
    post: { tags: ['auth'], summary: 'End this session', security: bearer, responses: { 200: { description: 'ended' }, 401: refusal('no or unknown token') } },
  },
  '/v1/auth/sessions': {
    get: { tags: ['auth'], summary: 'Your devices (live sessions), this one marked', security: bearer, responses: { 200: { description: 'the sessions' }, 401: refusal('no or unknown token') } },
  },
  '/v1/auth/password': {
    post: {
      tags: ['auth'],
      summary: 'Change your password (the only call allowed while a change is required)',
      security: bearer,
      requestBody: json({ type: 'object', required: ['oldPassword', 'newPassword'], properties: { oldPassword: { type: 'string' }, newPassword: { type: 'string' } } }),
      responses: { 200: { description: 'changed' }, 401: refusal('wrong old password or token'), 422: refusal('the new password breaks the policy') },
    },
  },
};

const appId = { name: 'appId', in: 'path', required: true, schema: { type: 'string' } };

/** The app panel and chats with apps, served by the open-API routes (openapi/routes.ts) beside /cgi. */
export const APP_PATHS: Record<string, unknown> = {
  '/v1/apps': {
    get: {
      tags: ['apps'],
      summary: "The apps in the person's app panel",
      security: bearer,
      parameters: [{ name: 'deviceType', in: 'query', schema: { type: 'string', enum: ['desktop', 'mobile'] } }],
      responses: { 200: { description: 'apps with their custom menus', ...json({ type: 'object', properties: { apps: { type: 'array', items: { type: 'object', additionalProperties: true } } } }) }, 401: refusal('no valid token') },
    },
  },
  '/v1/apps/{appId}/sso-token': {
    post: {
      tags: ['apps'],
      summary: "A 3-minute identify token and the app's home URL with $TOKEN$ filled in",
      security: bearer,
      parameters: [appId],
      responses: { 200: { description: 'token, expiresAt, url', ...json({ type: 'object', additionalProperties: true }) }, 401: refusal('no valid token'), 404: refusal('no such app') },
    },
  },
  '/v1/apps/{appId}/chat': {
    post: {
      tags: ['apps'],
      summary: "Opens (creates the first time) the person's chat with the app",
      description:
        'A conversation of type `app` whose only member is the caller. Send text, image or file into it with POST /v1/conversations/{id}/messages: ' +
        "the app's auto-reply rules answer, or the app is called back and answers with /cgi/msg/send. App messages carry `senderApp` and senderId 0.",
      security: bearer,
      parameters: [appId],
      responses: { 200: { description: 'the conversation', ...json({ type: 'object', additionalProperties: true }) }, 401: refusal('no valid token'), 403: refusal('the app takes no messages'), 404: refusal('no such app') },
    },
  },
  '/v1/apps/{appId}/session-export': {
    post: {
      tags: ['apps'],
      summary: 'Hands picked messages of a conversation to an app (会话消息转出)',
      description:
        "The messages (text, formatted text, pictures, files; up to 500) become a zip kept for the app; the answer's `url` is the app's url menu item `key` " +
        '(or its home page) with `token` and `file_id` added: open it, and the app fetches the zip with /cgi/session/msg/download.zip.',
      security: bearer,
      parameters: [appId],
      requestBody: json({
        type: 'object',
        properties: { conversationId: { type: 'string' }, messageIds: { type: 'array', items: { type: 'integer' }, maxItems: 500 }, key: { type: 'string' } },
        required: ['conversationId', 'messageIds'],
      }),
      responses: {
        200: { description: 'fileId, messages, url', ...json({ type: 'object', additionalProperties: true }) },
        401: refusal('no valid token'),
        403: refusal('not a member of the conversation, or the app takes no messages'),
        404: refusal('no such app, menu item or message'),
      },
    },
  },
  '/v1/apps/{appId}/menu': {
    post: {
      tags: ['apps'],
      summary: "A click on the app's custom menu",
      description: '`click` items are called back to the app as a `menu_click` event (answers `packageId`); `url` items answer `url` with $TOKEN$ filled in.',
      security: bearer,
      parameters: [appId],
      requestBody: json({ type: 'object', properties: { key: { type: 'string', maxLength: 100 } }, required: ['key'] }),
      responses: { 200: { description: 'packageId or url', ...json({ type: 'object', additionalProperties: true }) }, 401: refusal('no valid token'), 404: refusal('no such app or menu item') },
    },
  },
};
