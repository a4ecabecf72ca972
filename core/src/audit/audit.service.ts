import type { Context, ServiceSchema } from 'moleculer';
import { adminAction, type ServiceDeps } from '../services.ts';
import { buildExport, type ExportColumn, type ExportFormat } from './export.ts';
import { pageLog, scanLog, type LogFilter, type LogSpec } from './log-query.ts';
import { LOGIN_EVENTS, LOGIN_LOG, LOGIN_LOG_COLUMNS } from './login-log.ts';
import { OPERATION_COLUMNS, OPERATION_LOG, appendOperation, type OperationRecord } from './operation-log.ts';
import { USER_EVENTS, USER_EVENT_COLUMNS } from './user-events.ts';

const MAX_EXPORT_ROWS = 200_000;
const DEFAULT_EXPORT_ROWS = 100_000;

const text = (max: number) => ({ type: 'string', max, optional: true, pattern: /^[^\u0000-\u001f\u007f]*$/, messages: { stringPattern: "The '{field}' field must not contain control characters." } }) as const;
const id = { type: 'number', integer: true, positive: true, convert: true, optional: true } as const;
const range = {
  from: { type: 'date', convert: true, optional: true },
  to: { type: 'date', convert: true, optional: true },
} as const;
const paging = {
  page: { type: 'number', integer: true, min: 1, max: 1_000_000, optional: true, convert: true },
  pageSize: { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true },
} as const;
const exporting = {
  format: { type: 'enum', values: ['csv', 'jsonl'], optional: true },
  limit: { type: 'number', integer: true, min: 1, max: MAX_EXPORT_ROWS, optional: true, convert: true },
} as const;

type Query = LogFilter & { page?: number; pageSize?: number; format?: ExportFormat; limit?: number };

const loginFilters = { userId: id, account: text(64), event: { type: 'enum', values: [...LOGIN_EVENTS], optional: true }, search: text(100), ...range } as const;
const userEventFilters = { userId: id, account: text(64), event: text(40), search: text(100), ...range } as const;
const operationFilters = { account: text(64), action: text(200), search: text(100), ...range } as const;

/**
 * The audit trails: the login log and the user event log (written by the auth service inside its own
 * transactions) and the admin operation log (written here, from the admin API's middleware). All three are
 * read-only through every action: they can be queried by person and time range, and exported.
 */
export default function auditService({ db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('audit service needs storage');

  function page<T>(spec: LogSpec<T>, q: Query) {
    return pageLog(db!, spec, filterOf(q), q.page ?? 1, q.pageSize ?? 50);
  }
  function exportOf<T>(name: string, spec: LogSpec<T>, columns: ExportColumn<T>[], q: Query) {
    const limit = q.limit ?? DEFAULT_EXPORT_ROWS;
    return buildExport(name, q.format ?? 'csv', columns, scanLog(db!, spec, filterOf(q), limit + 1), limit);
  }

  return {
    name: 'audit',

    actions: {
      'loginLog.query': adminAction({
        admin: true,
        rest: 'GET /audit/login-log',
        params: { ...loginFilters, ...paging },
        handler: (ctx: Context<Query>) => page(LOGIN_LOG, ctx.params),
      }),
      'loginLog.export': adminAction({
        admin: true,
        rest: 'GET /audit/login-log/export',
        params: { ...loginFilters, ...exporting },
        handler: (ctx: Context<Query>) => exportOf('login-log', LOGIN_LOG, LOGIN_LOG_COLUMNS, ctx.params),
      }),
      'userEvents.query': adminAction({
        admin: true,
        rest: 'GET /audit/user-events',
        params: { ...userEventFilters, ...paging },
        handler: (ctx: Context<Query>) => page(USER_EVENTS, ctx.params),
      }),
      'userEvents.export': adminAction({
        admin: true,
        rest: 'GET /audit/user-events/export',
        params: { ...userEventFilters, ...exporting },
        handler: (ctx: Context<Query>) => exportOf('user-events', USER_EVENTS, USER_EVENT_COLUMNS, ctx.params),
      }),
      // What other admins did is for super-admins to read.
      'operationLog.query': adminAction({
        admin: 'super',
        rest: 'GET /audit/operation-log',
        params: { ...operationFilters, ...paging },
        handler: (ctx: Context<Query & { action?: string }>) => page(OPERATION_LOG, { ...ctx.params, event: ctx.params.action }),
      }),
      'operationLog.export': adminAction({
        admin: 'super',
        rest: 'GET /audit/operation-log/export',
        params: { ...operationFilters, ...exporting },
        handler: (ctx: Context<Query & { action?: string }>) => exportOf('operation-log', OPERATION_LOG, OPERATION_COLUMNS, { ...ctx.params, event: ctx.params.action }),
      }),
      /** Called by the admin API for every mutating call; not an admin action itself, so no route reaches it. */
      'operationLog.append': {
        params: {
          adminId: { type: 'number', integer: true, optional: true, nullable: true },
          adminAccount: { type: 'string', max: 200, optional: true, nullable: true },
          action: { type: 'string', min: 1, max: 2000 },
          method: { type: 'string', max: 20, optional: true, nullable: true },
          path: { type: 'string', max: 10_000, optional: true, nullable: true },
          params: { type: 'any', optional: true },
          outcome: { type: 'enum', values: ['ok', 'error'] },
          status: { type: 'number', integer: true, optional: true, nullable: true },
          errorCode: { type: 'string', max: 200, optional: true, nullable: true },
          errorMessage: { type: 'string', max: 100_000, optional: true, nullable: true },
          ip: { type: 'string', max: 200, optional: true, nullable: true },
        },
        async handler(ctx: Context<OperationRecord>) {
          await appendOperation(db, ctx.params, new Date());
          return { ok: true };
        },
      },
    },
  };
}

function filterOf(q: Query): LogFilter {
  return { userId: q.userId, account: q.account, event: q.event, from: q.from, to: q.to, search: q.search };
}
