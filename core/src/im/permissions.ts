import { qiaoError } from '../errors.ts';

export const ROLES = ['owner', 'admin', 'member'] as const;
export type Role = (typeof ROLES)[number];

export const WHO = ['members', 'admins', 'nobody'] as const;
export type Who = (typeof WHO)[number];

/** Who may do what in a group (群权限). `admins` means the owner and the group admins. */
export interface GroupPermissions {
  invite: Who;
  /** Whether members may leave by themselves. */
  leave: boolean;
  rename: Who;
  announce: Who;
  upload: Who;
}
export type GroupAction = 'invite' | 'rename' | 'announce' | 'upload';

/** Discussion groups are everybody's: anyone invites, renames, announces and leaves; the owner removes. */
export const DISCUSSION_PERMISSIONS: GroupPermissions = { invite: 'members', leave: true, rename: 'members', announce: 'members', upload: 'members' };
/** Fixed groups are the admins' by default (NetEase EIM's 集中管理); each group can be opened up. */
export const FIXED_DEFAULTS: GroupPermissions = { invite: 'admins', leave: true, rename: 'admins', announce: 'admins', upload: 'members' };
/** Department groups: membership is the directory's, so nobody invites and nobody leaves. */
export const DEPARTMENT_DEFAULTS: GroupPermissions = { invite: 'nobody', leave: false, rename: 'admins', announce: 'admins', upload: 'members' };

/** 1:1 chats and a person's chat with an app have two parties and no group settings. */
export const isPairChat = (type: string): boolean => type === 'single' || type === 'app';

export function effectivePermissions(type: string, stored: Partial<GroupPermissions> | null): GroupPermissions | null {
  if (isPairChat(type)) return null;
  if (type === 'discussion') return { ...DISCUSSION_PERMISSIONS };
  if (type === 'department') return { ...DEPARTMENT_DEFAULTS, ...(stored ?? {}), invite: 'nobody', leave: false };
  return { ...FIXED_DEFAULTS, ...(stored ?? {}) };
}

export const isGroupAdmin = (role: Role | null): boolean => role === 'owner' || role === 'admin';

export function allowed(perms: GroupPermissions | null, role: Role, action: GroupAction): boolean {
  if (!perms) return false;
  const who = perms[action];
  return who === 'members' || (who === 'admins' && isGroupAdmin(role));
}

const VERBS: Record<GroupAction, string> = { invite: 'invite people to', rename: 'rename', announce: 'post announcements in', upload: 'upload to the space of' };

export function assertAllowed(perms: GroupPermissions | null, role: Role, action: GroupAction, userId: number, conversationId: string, field = 'userId'): void {
  if (allowed(perms, role, action)) return;
  const who = perms?.[action];
  const why = !perms ? 'a 1:1 chat has no such setting' : who === 'nobody' ? 'nobody may, membership follows the directory' : 'only the group owner and group admins may';
  throw qiaoError('QIAO_FORBIDDEN', `user ${userId} may not ${VERBS[action]} conversation ${conversationId}: ${why}`, { field, action });
}

/** Moleculer param schema for a (partial) permissions object. */
export const PERMISSIONS_PARAM = {
  type: 'object',
  optional: true,
  strict: true,
  props: {
    invite: { type: 'enum', values: ['members', 'admins'], optional: true },
    leave: { type: 'boolean', optional: true },
    rename: { type: 'enum', values: ['members', 'admins'], optional: true },
    announce: { type: 'enum', values: ['members', 'admins'], optional: true },
    upload: { type: 'enum', values: ['members', 'admins'], optional: true },
  },
} as const;
