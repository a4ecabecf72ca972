import type { Context, ServiceSchema } from 'moleculer';
import { qiaoError } from '../errors.ts';
import type { ServiceDeps } from '../services.ts';
import { assertMember, CONVERSATION_TYPES, createConversation, type CreateConversationInput } from './conversations.ts';
import { runBeforeMessageStored } from './hooks.ts';
import {
  findByClientMsgId,
  listMessages,
  MESSAGE_TYPES,
  storeMessage,
  validateBody,
  type ListMessagesInput,
  type PendingMessage,
  type StoredMessage,
} from './messages.ts';

const userId = { type: 'number', integer: true, positive: true } as const;
const conversationId = { type: 'string', min: 1, max: 64 } as const;

/** A retry must name the conversation the first send went to; anything else is a client bug worth showing. */
function sameSend(stored: StoredMessage, pending: PendingMessage): StoredMessage {
  if (stored.conversationId !== pending.conversationId) {
    throw qiaoError(
      'QIAO_CONFLICT',
      `clientMsgId "${pending.clientMsgId}" was already used by user ${pending.senderId} in conversation ${stored.conversationId}`,
      { field: 'clientMsgId' },
    );
  }
  return stored;
}

/**
 * Conversations and messages. A send is answered only after its transaction committed, with the server id;
 * the broker events that follow are wake-ups, the durable record is the message row and its log entry.
 */
export default function imService({ db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('im service needs storage');
  return {
    name: 'im',

    actions: {
      'conversations.create': {
        params: {
          type: { type: 'enum', values: [...CONVERSATION_TYPES] },
          members: { type: 'array', items: userId, min: 1, max: 5000 },
          name: { type: 'string', optional: true, max: 200 },
          createdBy: userId,
        },
        async handler(ctx: Context<CreateConversationInput>) {
          const { conversation, created } = await createConversation(db, ctx.params);
          if (created) this.wake(created, 'im.conversation.created', conversation);
          return conversation;
        },
      },

      send: {
        params: {
          conversationId,
          senderId: userId,
          clientMsgId: { type: 'string', min: 1, max: 64 },
          type: { type: 'enum', values: MESSAGE_TYPES },
          body: { type: 'any' },
        },
        async handler(ctx: Context<PendingMessage>): Promise<StoredMessage> {
          const { conversationId: convId, senderId, clientMsgId, type, body } = ctx.params;
          validateBody(type, body);
          const pending: PendingMessage = { conversationId: convId, senderId, clientMsgId, type, body };
          // A retry of a committed send gets the stored message back, without running the hooks again.
          const earlier = await findByClientMsgId(db, senderId, clientMsgId);
          if (earlier) return sameSend(earlier, pending);
          // Checked before the hook so plugins never see a message that cannot be stored; checked again
          // inside the write.
          await assertMember(db, convId, senderId, 'senderId');
          const approved = await runBeforeMessageStored(this.broker, ctx, pending);
          const { message, logged } = await storeMessage(db, approved);
          if (logged) this.wake(logged, 'im.message.stored', message);
          return sameSend(message, pending);
        },
      },

      'messages.list': {
        params: {
          conversationId,
          userId,
          after: { type: 'number', integer: true, min: 0, optional: true, convert: true },
          limit: { type: 'number', integer: true, min: 1, max: 500, optional: true, convert: true },
        },
        async handler(ctx: Context<ListMessagesInput>) {
          const messages = await listMessages(db, ctx.params);
          return { messages, last: messages.length ? messages[messages.length - 1].id : (ctx.params.after ?? 0) };
        },
      },
    },

    methods: {
      /**
       * Broadcast, not emit: every gateway node has sockets to wake and every plugin process its own
       * cursor, and emit would reach only one instance per service. A lost event costs a delay, never data.
       */
      wake(logged: { seq: number; topic: string }, event: string, payload: unknown) {
        for (const [name, data] of [['eventlog.appended', logged], [event, payload]] as const) {
          Promise.resolve(this.broker.broadcast(name, data)).catch((err: Error) => this.logger.warn(`broadcast ${name} failed: ${err.message}`));
        }
      },
    },
  };
}
