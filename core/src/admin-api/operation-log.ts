import type Koa from 'koa';

/**
 * The one place the admin operation log hooks in (a later issue). It wraps every request that reaches the
 * API routes (after authentication and body parsing; login included, with no admin yet), so after `next()`
 * it sees who (`ctx.state.admin`), what (`ctx.state.adminAction`, the broker action, and
 * `ctx.state.adminParams`) and how it ended (`ctx.status`; thrown errors propagate through it). Until
 * then it only passes through.
 */
export function operationLog(): Koa.Middleware {
  return async function operationLogMiddleware(_ctx, next) {
    await next();
  };
}
