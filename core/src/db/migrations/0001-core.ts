import type { MigrationFn } from '../migrator.ts';

const timestamps = (DataTypes: Parameters<MigrationFn>[0]['context']['DataTypes']) => ({
  created_at: { type: DataTypes.DATE, allowNull: false },
  updated_at: { type: DataTypes.DATE, allowNull: false },
});

export const up: MigrationFn = async ({ context: { qi, DataTypes, dialect } }) => {
  // Log sequences are 64-bit on both: SQLite's INTEGER PRIMARY KEY already is, and only it may AUTOINCREMENT.
  const SEQ = dialect === 'postgres' ? DataTypes.BIGINT : DataTypes.INTEGER;

  await qi.createTable('system_settings', {
    key: { type: DataTypes.STRING(100), primaryKey: true },
    value: { type: DataTypes.JSON, allowNull: false },
    updated_at: { type: DataTypes.DATE, allowNull: false },
  });

  await qi.createTable('admins', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    account: { type: DataTypes.STRING(64), allowNull: false, unique: true },
    display_name: { type: DataTypes.STRING(100), allowNull: false },
    password_hash: { type: DataTypes.STRING(255), allowNull: false },
    role: { type: DataTypes.STRING(20), allowNull: false },
    enabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
    must_change_password: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    ...timestamps(DataTypes),
  });

  await qi.createTable('admin_sessions', {
    token_hash: { type: DataTypes.STRING(64), primaryKey: true },
    admin_id: { type: DataTypes.INTEGER, allowNull: false, references: { model: 'admins', key: 'id' }, onDelete: 'CASCADE' },
    created_at: { type: DataTypes.DATE, allowNull: false },
    expires_at: { type: DataTypes.DATE, allowNull: false },
  });

  // The minimal account record the licence counts seats against; the org issue widens it.
  await qi.createTable('users', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    account: { type: DataTypes.STRING(64), allowNull: false, unique: true },
    name: { type: DataTypes.STRING(100), allowNull: false },
    status: { type: DataTypes.STRING(20), allowNull: false, defaultValue: 'active' },
    authorised: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    ...timestamps(DataTypes),
  });

  await qi.createTable('conversations', {
    id: { type: DataTypes.STRING(64), primaryKey: true },
    type: { type: DataTypes.STRING(20), allowNull: false },
    name: { type: DataTypes.STRING(200), allowNull: true },
    created_by: { type: DataTypes.INTEGER, allowNull: true },
    ...timestamps(DataTypes),
  });

  await qi.createTable('conversation_members', {
    conversation_id: { type: DataTypes.STRING(64), primaryKey: true, references: { model: 'conversations', key: 'id' }, onDelete: 'CASCADE' },
    user_id: { type: DataTypes.INTEGER, primaryKey: true, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
    role: { type: DataTypes.STRING(20), allowNull: false, defaultValue: 'member' },
    joined_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('conversation_members', ['user_id']);

  // `id` is the global commit order: a message's place in the log is fixed when its transaction commits.
  await qi.createTable('messages', {
    id: { type: SEQ, primaryKey: true, autoIncrement: true },
    conversation_id: { type: DataTypes.STRING(64), allowNull: false, references: { model: 'conversations', key: 'id' } },
    sender_id: { type: DataTypes.INTEGER, allowNull: false },
    client_msg_id: { type: DataTypes.STRING(64), allowNull: false },
    type: { type: DataTypes.STRING(32), allowNull: false },
    body: { type: DataTypes.JSON, allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
    recalled_at: { type: DataTypes.DATE, allowNull: true },
  });
  await qi.addIndex('messages', ['sender_id', 'client_msg_id'], { unique: true, name: 'messages_sender_client_msg_id' });
  await qi.addIndex('messages', ['conversation_id', 'id'], { name: 'messages_conversation_id_id' });

  // The durable "after" side of every domain change: plugins and other consumers read it by cursor.
  await qi.createTable('event_log', {
    seq: { type: SEQ, primaryKey: true, autoIncrement: true },
    topic: { type: DataTypes.STRING(100), allowNull: false },
    subject: { type: DataTypes.STRING(200), allowNull: true },
    payload: { type: DataTypes.JSON, allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('event_log', ['topic', 'seq'], { name: 'event_log_topic_seq' });

  await qi.createTable('plugin_cursors', {
    plugin_id: { type: DataTypes.STRING(200), primaryKey: true },
    stream: { type: DataTypes.STRING(100), primaryKey: true },
    position: { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 },
    updated_at: { type: DataTypes.DATE, allowNull: false },
  });
};

export const down: MigrationFn = async ({ context: { qi } }) => {
  for (const t of ['plugin_cursors', 'event_log', 'messages', 'conversation_members', 'conversations', 'users', 'admin_sessions', 'admins', 'system_settings']) {
    await qi.dropTable(t);
  }
};
