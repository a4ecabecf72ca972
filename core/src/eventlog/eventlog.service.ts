import type { Context, ServiceSchema } from 'moleculer';
import type { ServiceDeps } from '../services.ts';
import { commitCursor, getCursor, headSeq, readEvents } from './event-log.ts';

const MAX_PAGE = 1000;

/** Read side of the durable event log: paged reads by sequence and per-consumer cursors. */
export default function eventlogService({ db }: ServiceDeps): ServiceSchema {
  if (!db) throw new Error('eventlog service needs storage');
  return {
    name: 'eventlog',

    actions: {
      read: {
        params: {
          after: { type: 'number', integer: true, min: 0, convert: true },
          limit: { type: 'number', integer: true, min: 1, max: MAX_PAGE, optional: true, convert: true },
          topics: { type: 'array', items: { type: 'string', min: 1, max: 100 }, optional: true, max: 50 },
        },
        async handler(ctx: Context<{ after: number; limit?: number; topics?: string[] }>) {
          const events = await readEvents(db, ctx.params.after, ctx.params.limit ?? 100, ctx.params.topics);
          return { events, last: events.length ? events[events.length - 1].seq : ctx.params.after };
        },
      },
      head: {
        async handler() {
          return { seq: await headSeq(db) };
        },
      },
      'cursor.get': {
        params: { consumer: { type: 'string', min: 1, max: 200 }, stream: { type: 'string', min: 1, max: 100 } },
        async handler(ctx: Context<{ consumer: string; stream: string }>) {
          return { position: await getCursor(db, ctx.params.consumer, ctx.params.stream) };
        },
      },
      'cursor.commit': {
        params: {
          consumer: { type: 'string', min: 1, max: 200 },
          stream: { type: 'string', min: 1, max: 100 },
          position: { type: 'number', integer: true, min: 0, convert: true },
        },
        async handler(ctx: Context<{ consumer: string; stream: string; position: number }>) {
          return { position: await commitCursor(db, ctx.params.consumer, ctx.params.stream, ctx.params.position) };
        },
      },
    },
  };
}
