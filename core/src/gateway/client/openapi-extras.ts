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
