import moleculer from 'moleculer';

/**
 * Every error code Qiao answers with, in one place so each is greppable. The number is the HTTP status
 * the gateways use for it. Messages are written at the throw site and name the field or object at fault.
 */
export const ERROR_CODES = {
  QIAO_VALIDATION: 422,
  QIAO_BAD_REQUEST: 400,
  QIAO_NOT_FOUND: 404,
  QIAO_CONFLICT: 409,
  QIAO_UNAUTHENTICATED: 401,
  QIAO_FORBIDDEN: 403,
  QIAO_RATE_LIMITED: 429,
  QIAO_PAYLOAD_TOO_LARGE: 413,
  QIAO_INTERNAL: 500,
  QIAO_UNAVAILABLE: 503,

  QIAO_CONFIG_INVALID: 500,

  QIAO_LICENCE_INVALID: 422,
  QIAO_LICENCE_EXPIRED: 422,
  QIAO_LICENCE_FEATURE_MISSING: 403,
  QIAO_LICENCE_SEATS_EXHAUSTED: 403,

  QIAO_PLUGINS_FILE_INVALID: 500,
  QIAO_PLUGIN_NOT_FOUND: 404,
  QIAO_PLUGIN_EXISTS: 409,
  QIAO_PLUGIN_MANIFEST_INVALID: 422,
  QIAO_PLUGIN_SETTINGS_INVALID: 422,
  QIAO_PLUGIN_INCOMPATIBLE: 409,
  QIAO_PLUGIN_ERROR_DISABLED: 409,
  QIAO_PLUGIN_PERMISSION_DENIED: 403,
  QIAO_PLUGIN_UNAVAILABLE: 503,
  QIAO_PLUGIN_TIMEOUT: 504,
  QIAO_PLUGIN_INSTALL_FAILED: 422,

  QIAO_ADMIN_BAD_CREDENTIALS: 401,
  QIAO_ADMIN_DISABLED: 403,

  QIAO_MESSAGE_REJECTED: 422,
  QIAO_CONVERSATION_NOT_FOUND: 404,
  QIAO_NOT_A_MEMBER: 403,
  QIAO_CONVERSATION_DISSOLVED: 410,
  QIAO_RECALL_WINDOW_CLOSED: 409,
  QIAO_QUOTA_EXCEEDED: 413,
  QIAO_FILE_PURGED: 410,
  QIAO_RANGE_NOT_SATISFIABLE: 416,

  QIAO_BACKUP_INVALID: 422,

  QIAO_AUTH_BAD_CREDENTIALS: 401,
  QIAO_AUTH_LOCKED: 403,
  QIAO_AUTH_DISABLED: 403,
  QIAO_AUTH_RESIGNED: 403,
  QIAO_AUTH_NOT_AUTHORISED: 403,
  QIAO_AUTH_DEVICE_NOT_ALLOWED: 403,
  QIAO_AUTH_IP_RESTRICTED: 403,
  QIAO_AUTH_PASSWORD_POLICY: 422,
  QIAO_AUTH_PASSWORD_CHANGE_REQUIRED: 403,
  QIAO_AUTH_SMS_CODE_INVALID: 401,
  QIAO_AUTH_SMS_UNAVAILABLE: 503,
  QIAO_AUTH_EXTERNAL_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ErrorData {
  /** The request field at fault, as a dotted path (`settings.smtp.port`). */
  field?: string;
  [key: string]: unknown;
}

/** Moleculer error carrying a Qiao code; `code` is the HTTP status, `type` the Qiao code. */
export class QiaoError extends moleculer.Errors.MoleculerError {
  constructor(type: ErrorCode, message: string, data?: ErrorData) {
    super(message, ERROR_CODES[type], type, data);
    this.name = 'QiaoError';
  }
}

export function qiaoError(type: ErrorCode, message: string, data?: ErrorData): QiaoError {
  return new QiaoError(type, message, data);
}

/** Turns any thrown value into the `{code, message, field}` shape the gateways and CLI print. */
export function describeError(err: unknown): { status: number; code: string; message: string; data?: unknown } {
  if (err && typeof err === 'object' && 'type' in err && 'code' in err) {
    const e = err as { code: number; type: string; message: string; data?: unknown };
    if (e.type === 'VALIDATION_ERROR') {
      // Moleculer's own param validator: name the first field it complains about.
      const first = Array.isArray(e.data) ? (e.data[0] as { field?: string; message?: string }) : undefined;
      return {
        status: 422,
        code: 'QIAO_VALIDATION',
        message: first?.message ?? e.message,
        data: { field: first?.field, errors: e.data },
      };
    }
    const status = typeof e.code === 'number' && e.code >= 400 && e.code < 600 ? e.code : 500;
    return { status, code: String(e.type || 'QIAO_INTERNAL'), message: e.message, data: e.data };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, code: 'QIAO_INTERNAL', message };
}
