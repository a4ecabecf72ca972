/**
 * A refusal from the server (`status` is the HTTP status and `code` the `QIAO_…` code, `field` the request
 * field at fault), or a failure to reach it (`status` 0, code `NETWORK` or `TIMEOUT`).
 */
export class QiaoApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly field?: string;

  constructor(status: number, code: string, message: string, field?: string) {
    super(message);
    this.name = 'QiaoApiError';
    this.status = status;
    this.code = code;
    if (field !== undefined) this.field = field;
  }

  /**
   * Worth trying again as it was: the server could not be reached or asked to come back. A retried send
   * carries the same clientMsgId, so it can never be stored twice.
   */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status === 502 || this.status === 503 || this.status === 504;
  }
}
