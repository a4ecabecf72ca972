import type { Context, ServiceBroker } from 'moleculer';
import { qiaoError, QiaoError } from '../errors.ts';
import { validateBody, type PendingMessage } from './messages.ts';

export const BEFORE_MESSAGE_STORED = 'plugins.hooks.beforeMessageStored';

/** What the plugin host answers for `beforeMessageStored`, after running every enabled plugin's hook. */
export interface BeforeMessageStoredAnswer {
  outcome: 'allow' | 'reject';
  message?: { body?: unknown };
  reason?: string;
  pluginId?: string;
}

/** Moleculer's answers when nothing serves the action (any more): the host is absent, not failing. */
const HOST_ABSENT = new Set(['SERVICE_NOT_FOUND', 'SERVICE_NOT_AVAILABLE']);

/**
 * Runs `beforeMessageStored` through the plugin host and returns the message to store. Per-plugin time
 * limits and fail-open/fail-closed policies are the host's business; here only the host's verdict counts.
 * No host running means no plugins, so the message passes unchanged. A host that is there but fails is
 * answered with QIAO_PLUGIN_UNAVAILABLE rather than a silent allow, because a fail-closed plugin (audit,
 * compliance) may be installed; the client retries with the same clientMsgId.
 * A plugin may change only the body; type, sender and conversation stay the client's.
 */
export async function runBeforeMessageStored(broker: ServiceBroker, ctx: Context, pending: PendingMessage): Promise<PendingMessage> {
  if (!broker.registry.actions.isAvailable(BEFORE_MESSAGE_STORED)) return pending;
  let answer: BeforeMessageStoredAnswer;
  try {
    answer = await ctx.call<BeforeMessageStoredAnswer, { message: PendingMessage }>(BEFORE_MESSAGE_STORED, { message: pending });
  } catch (err) {
    const type = (err as { type?: string }).type ?? '';
    if (HOST_ABSENT.has(type)) return pending;
    if (err instanceof QiaoError || type.startsWith('QIAO_')) throw err;
    throw qiaoError('QIAO_PLUGIN_UNAVAILABLE', `the plugin host could not run beforeMessageStored: ${(err as Error).message}`);
  }
  if (answer?.outcome === 'reject') {
    const reason = answer.reason || 'rejected by a plugin';
    throw qiaoError('QIAO_MESSAGE_REJECTED', `message rejected${answer.pluginId ? ` by plugin ${answer.pluginId}` : ''}: ${reason}`, {
      field: 'body',
      reason,
      pluginId: answer.pluginId,
    });
  }
  if (answer?.outcome !== 'allow') {
    throw qiaoError('QIAO_PLUGIN_UNAVAILABLE', `the plugin host answered beforeMessageStored with outcome "${String(answer?.outcome)}"`);
  }
  const body = answer.message?.body ?? pending.body;
  try {
    validateBody(pending.type, body);
  } catch (err) {
    // The client's message was valid; a plugin broke it. Say whose fault it is.
    throw qiaoError('QIAO_PLUGIN_UNAVAILABLE', `plugin ${answer.pluginId ?? '(unknown)'} changed the message into an invalid one: ${(err as Error).message}`, {
      field: (err as QiaoError).data?.field as string | undefined,
      pluginId: answer.pluginId,
    });
  }
  return { ...pending, body };
}
