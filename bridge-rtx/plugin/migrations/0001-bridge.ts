import type { PluginMigration } from '@qiao/plugin-api';

/**
 * The bridge's own tables. Times are epoch milliseconds (BIGINT) and flags 0/1 integers, so the same SQL
 * reads them on SQLite and PostgreSQL.
 */
export const up: PluginMigration = async ({ context: { qi, DataTypes } }) => {
  const ms = (allowNull = false) => ({ type: DataTypes.BIGINT, allowNull });
  const flag = { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 };

  // Paired agents: the credential is kept as a SHA-256 of a 32-byte random secret, never in clear.
  await qi.createTable('rtx_bridge_agents', {
    id: { type: DataTypes.STRING(40), primaryKey: true },
    name: { type: DataTypes.STRING(200), allowNull: false },
    secret_hash: { type: DataTypes.STRING(64), allowNull: false },
    created_at: ms(),
    revoked_at: ms(true),
    last_seen_at: ms(true),
    last_address: { type: DataTypes.STRING(100), allowNull: true },
  });
  // Connection codes: single use, short-lived, hashed.
  await qi.createTable('rtx_bridge_codes', {
    code_hash: { type: DataTypes.STRING(64), primaryKey: true },
    created_at: ms(),
    expires_at: ms(),
    used_at: ms(true),
    used_by: { type: DataTypes.STRING(40), allowNull: true },
  });
  // RTX accounts: what the last sync saw (fingerprint, departments) and whom they are in Qiao.
  await qi.createTable('rtx_bridge_users', {
    uid_key: { type: DataTypes.STRING(100), primaryKey: true },
    uid: { type: DataTypes.STRING(100), allowNull: false },
    qiao_account: { type: DataTypes.STRING(100), allowNull: false },
    qiao_account_key: { type: DataTypes.STRING(100), allowNull: false },
    qiao_user_id: { type: DataTypes.INTEGER, allowNull: true },
    origin: { type: DataTypes.STRING(10), allowNull: false },
    fingerprint: { type: DataTypes.TEXT, allowNull: true },
    departments: { type: DataTypes.TEXT, allowNull: true },
    removed: flag,
    updated_at: ms(),
  });
  await qi.addIndex('rtx_bridge_users', ['qiao_user_id'], { name: 'rtx_bridge_users_qiao_user' });
  await qi.addIndex('rtx_bridge_users', ['qiao_account_key'], { name: 'rtx_bridge_users_qiao_account' });
  await qi.createTable('rtx_bridge_departments', {
    path: { type: DataTypes.STRING(2000), primaryKey: true },
    qiao_department_id: { type: DataTypes.INTEGER, allowNull: true },
    removed: flag,
    updated_at: ms(),
  });
  // RTX conversation keys ({GUID}) and the Qiao conversations they are mirrored in; several keys may lead
  // to one Qiao 1:1 chat (RTX opens a new window key now and then), `relay` keys are the relay account's.
  await qi.createTable('rtx_bridge_conversations', {
    rtx_key: { type: DataTypes.STRING(40), primaryKey: true },
    qiao_conversation_id: { type: DataTypes.STRING(64), allowNull: false },
    kind: { type: DataTypes.STRING(10), allowNull: false },
    dis_group_id: { type: DataTypes.INTEGER, allowNull: true },
    title: { type: DataTypes.STRING(200), allowNull: true },
    updated_at: ms(),
  });
  await qi.addIndex('rtx_bridge_conversations', ['qiao_conversation_id'], { name: 'rtx_bridge_conversations_qiao' });
  // RTX → Qiao: one row per im_message_id (or notification id), so a repeat is recognised forever.
  await qi.createTable('rtx_bridge_inbound', {
    id: { type: DataTypes.STRING(80), primaryKey: true },
    status: { type: DataTypes.STRING(10), allowNull: false },
    qiao_message_id: { type: DataTypes.BIGINT, allowNull: true },
    error: { type: DataTypes.TEXT, allowNull: true },
    item: { type: DataTypes.TEXT, allowNull: true },
    received_at: ms(),
    updated_at: ms(),
  });
  await qi.addIndex('rtx_bridge_inbound', ['status'], { name: 'rtx_bridge_inbound_status' });
  // Qiao → RTX: the outbox, in commit order; `seq` is what the agent acknowledges.
  await qi.createTable('rtx_bridge_outbox', {
    seq: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    qiao_message_id: { type: DataTypes.BIGINT, allowNull: false, unique: true },
    conversation_id: { type: DataTypes.STRING(64), allowNull: false },
    item: { type: DataTypes.TEXT, allowNull: false },
    status: { type: DataTypes.STRING(10), allowNull: false },
    error: { type: DataTypes.TEXT, allowNull: true },
    lossy: flag,
    via_relay: flag,
    created_at: ms(),
    delivered_at: ms(true),
  });
  await qi.addIndex('rtx_bridge_outbox', ['status', 'seq'], { name: 'rtx_bridge_outbox_status' });
  await qi.createTable('rtx_bridge_sync_runs', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    trigger: { type: DataTypes.STRING(20), allowNull: false },
    status: { type: DataTypes.STRING(12), allowNull: false },
    started_at: ms(),
    finished_at: ms(true),
    org_hash: { type: DataTypes.STRING(64), allowNull: true },
    rtx_users: { type: DataTypes.INTEGER, allowNull: true },
    added: flag,
    changed: flag,
    moved: flag,
    removed: flag,
    restored: flag,
    departments_added: flag,
    departments_removed: flag,
    skipped: flag,
    problems: { type: DataTypes.TEXT, allowNull: true },
    error: { type: DataTypes.TEXT, allowNull: true },
  });
  await qi.createTable('rtx_bridge_counters', {
    name: { type: DataTypes.STRING(60), primaryKey: true },
    value: { type: DataTypes.BIGINT, allowNull: false },
  });
  await qi.createTable('rtx_bridge_meta', {
    key: { type: DataTypes.STRING(60), primaryKey: true },
    value: { type: DataTypes.TEXT, allowNull: true },
  });
};

export const down: PluginMigration = async ({ context: { qi } }) => {
  for (const t of [
    'rtx_bridge_meta',
    'rtx_bridge_counters',
    'rtx_bridge_sync_runs',
    'rtx_bridge_outbox',
    'rtx_bridge_inbound',
    'rtx_bridge_conversations',
    'rtx_bridge_departments',
    'rtx_bridge_users',
    'rtx_bridge_codes',
    'rtx_bridge_agents',
  ]) {
    await qi.dropTable(t);
  }
};
