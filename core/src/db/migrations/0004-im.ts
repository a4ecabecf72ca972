import type { MigrationFn } from '../migrator.ts';

/**
 * Messaging: groups (fixed, department), read cursors, recalls, per-user sync, broadcasts and files.
 *
 * `sync_items` is every user's inbox: one row per recipient of each message, recall, read receipt,
 * membership change, broadcast and org change that concerns them, numbered 1, 2, 3… per user by
 * `sync_heads`. im/sync.ts explains why the numbers are dense and why they follow commit order.
 */
export const up: MigrationFn = async ({ context: { qi, DataTypes, dialect } }) => {
  const SEQ = dialect === 'postgres' ? DataTypes.BIGINT : DataTypes.INTEGER;

  const conversationColumns: Record<string, object> = {
    // Department groups: the department whose people are the members, and whether sub-departments count.
    department_id: { type: DataTypes.INTEGER, allowNull: true },
    include_sub: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    // Fixed and department groups: who may invite, leave, rename, announce, upload (im/permissions.ts).
    permissions: { type: DataTypes.JSON, allowNull: true },
    announcement: { type: DataTypes.JSON, allowNull: true },
    // Per-group override of the admin's group space quota, bytes.
    space_quota: { type: DataTypes.BIGINT, allowNull: true },
    dissolved_at: { type: DataTypes.DATE, allowNull: true },
  };
  for (const [name, def] of Object.entries(conversationColumns)) await qi.addColumn('conversations', name, def as never);
  await qi.addIndex('conversations', ['department_id'], { name: 'conversations_department_id' });

  // The member's read cursor: every message with an id up to it is read.
  await qi.addColumn('conversation_members', 'last_read_id', { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 });

  await qi.addColumn('messages', 'recalled_by', { type: DataTypes.INTEGER, allowNull: true });
  // The sender asked for a read receipt (回执消息); the admin's forced mode shows receipts for every message.
  await qi.addColumn('messages', 'receipt', { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false });
  // Lower-cased plain text of the message for keyword search (im/search.ts).
  await qi.addColumn('messages', 'search_text', { type: DataTypes.TEXT, allowNull: true });
  await qi.addIndex('messages', ['sender_id', 'id'], { name: 'messages_sender_id_id' });

  await qi.createTable('sync_heads', {
    user_id: { type: DataTypes.INTEGER, primaryKey: true },
    head: { type: DataTypes.BIGINT, allowNull: false },
  });
  await qi.createTable('sync_items', {
    user_id: { type: DataTypes.INTEGER, primaryKey: true },
    seq: { type: DataTypes.BIGINT, primaryKey: true },
    kind: { type: DataTypes.STRING(20), allowNull: false },
    conversation_id: { type: DataTypes.STRING(64), allowNull: true },
    // The message (kind message, recall) or broadcast (kind broadcast) the item is about.
    ref_id: { type: DataTypes.BIGINT, allowNull: true },
    payload: { type: DataTypes.JSON, allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('sync_items', ['created_at'], { name: 'sync_items_created_at' });

  await qi.createTable('broadcasts', {
    id: { type: SEQ, primaryKey: true, autoIncrement: true },
    sender_kind: { type: DataTypes.STRING(10), allowNull: false },
    sender_id: { type: DataTypes.INTEGER, allowNull: true },
    sender_name: { type: DataTypes.STRING(100), allowNull: false },
    audience: { type: DataTypes.JSON, allowNull: false },
    online_only: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    type: { type: DataTypes.STRING(32), allowNull: false },
    title: { type: DataTypes.STRING(200), allowNull: true },
    body: { type: DataTypes.JSON, allowNull: false },
    popup_seconds: { type: DataTypes.INTEGER, allowNull: true },
    recipient_count: { type: DataTypes.INTEGER, allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });

  // Content on disk, one file per distinct content, named by its SHA-256.
  await qi.createTable('im_blobs', {
    sha256: { type: DataTypes.STRING(64), primaryKey: true },
    size: { type: DataTypes.BIGINT, allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  // What users see: a display name and an owner for a blob; many files may share one blob.
  await qi.createTable('im_files', {
    id: { type: DataTypes.STRING(32), primaryKey: true },
    sha256: { type: DataTypes.STRING(64), allowNull: false },
    size: { type: DataTypes.BIGINT, allowNull: false },
    kind: { type: DataTypes.STRING(10), allowNull: false },
    name: { type: DataTypes.STRING(255), allowNull: false },
    mime: { type: DataTypes.STRING(100), allowNull: true },
    owner_id: { type: DataTypes.INTEGER, allowNull: false },
    conversation_id: { type: DataTypes.STRING(64), allowNull: true },
    in_space: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
    purged_at: { type: DataTypes.DATE, allowNull: true },
  });
  await qi.addIndex('im_files', ['sha256'], { name: 'im_files_sha256' });
  await qi.addIndex('im_files', ['conversation_id'], { name: 'im_files_conversation_id' });
  await qi.addIndex('im_files', ['created_at'], { name: 'im_files_created_at' });
  // The conversations a file was sent into: their members may download it.
  await qi.createTable('im_file_links', {
    file_id: { type: DataTypes.STRING(32), primaryKey: true },
    conversation_id: { type: DataTypes.STRING(64), primaryKey: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.createTable('im_uploads', {
    id: { type: DataTypes.STRING(32), primaryKey: true },
    user_id: { type: DataTypes.INTEGER, allowNull: false },
    kind: { type: DataTypes.STRING(10), allowNull: false },
    name: { type: DataTypes.STRING(255), allowNull: false },
    mime: { type: DataTypes.STRING(100), allowNull: true },
    size: { type: DataTypes.BIGINT, allowNull: false },
    sha256: { type: DataTypes.STRING(64), allowNull: false },
    conversation_id: { type: DataTypes.STRING(64), allowNull: true },
    in_space: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    received: { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 },
    created_at: { type: DataTypes.DATE, allowNull: false },
    updated_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('im_uploads', ['user_id', 'sha256'], { name: 'im_uploads_user_sha256' });
};

export const down: MigrationFn = async ({ context: { qi } }) => {
  for (const t of ['im_uploads', 'im_file_links', 'im_files', 'im_blobs', 'broadcasts', 'sync_items', 'sync_heads']) await qi.dropTable(t);
  await qi.removeIndex('messages', 'messages_sender_id_id');
  for (const c of ['search_text', 'receipt', 'recalled_by']) await qi.removeColumn('messages', c);
  await qi.removeColumn('conversation_members', 'last_read_id');
  await qi.removeIndex('conversations', 'conversations_department_id');
  for (const c of ['dissolved_at', 'space_quota', 'announcement', 'permissions', 'include_sub', 'department_id']) await qi.removeColumn('conversations', c);
};
