import type moleculer from 'moleculer';
import type { UserPresence } from '../../presence/presence-state.ts';

/** How a person the viewer may not see is answered: like an id of nobody, whom presence shows offline. */
export const unseen = (userId: number): UserPresence => ({ userId, status: 'offline', devices: [] });

/** Which of `userIds` the viewer may see, by the directory's visibility rules (org decides, nobody else). */
export async function visibleIds(broker: moleculer.ServiceBroker, viewer: number, userIds: number[]): Promise<Set<number>> {
  if (userIds.length === 0) return new Set();
  const r = await broker.call<{ userIds: number[] }, { viewer: number; userIds: number[] }>('org.client.visible', { viewer, userIds });
  return new Set(r.userIds);
}

/**
 * Presence of the people named, in the order named, as the viewer may know it: people hidden from them by
 * a visibility rule are answered exactly like ids of nobody, so the answer tells nothing about them.
 */
export async function presenceFor(broker: moleculer.ServiceBroker, userIds: number[], visible: Set<number>): Promise<UserPresence[]> {
  const ids = [...new Set(userIds)];
  const asked = ids.filter((u) => visible.has(u));
  const known = new Map<number, UserPresence>();
  if (asked.length) {
    const { users } = await broker.call<{ users: UserPresence[] }, { userIds: number[] }>('presence.get', { userIds: asked });
    for (const p of users) known.set(p.userId, p);
  }
  return ids.map((u) => known.get(u) ?? unseen(u));
}
