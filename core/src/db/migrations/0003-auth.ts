import type { MigrationFn } from '../migrator.ts';

/**
 * Accounts and login security: the credential columns of `users`, device sessions (only a hash of each
 * token), pending SMS login challenges, login IP rules, and the three audit trails (login log, admin
 * operation log, user event log).
 *
 * The admin operation log refuses UPDATE at the database level, so not even a bug in an action can edit
 * it. DELETE stays possible because a full restore (`qiao backup restore`) empties every table first; no
 * action deletes from it.
 */
export const up: MigrationFn = async ({ context: { qi, DataTypes, dialect, db } }) => {
  // Log ids are 64-bit on both: SQLite's INTEGER PRIMARY KEY already is, and only it may AUTOINCREMENT.
  const SEQ = dialect === 'postgres' ? DataTypes.BIGINT : DataTypes.INTEGER;

  const userColumns: Record<string, object> = {
    password_hash: { type: DataTypes.STRING(255), allowNull: true },
    password_changed_at: { type: DataTypes.DATE, allowNull: true },
    must_change_password: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    failed_attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    locked_at: { type: DataTypes.DATE, allowNull: true },
    last_login_at: { type: DataTypes.DATE, allowNull: true },
  };
  for (const [name, def] of Object.entries(userColumns)) await qi.addColumn('users', name, def as never);
  await qi.addIndex('users', ['locked_at'], { name: 'users_locked_at' });

  await qi.createTable('user_sessions', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    token_hash: { type: DataTypes.STRING(64), allowNull: false, unique: true },
    user_id: { type: DataTypes.INTEGER, allowNull: false, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
    device_type: { type: DataTypes.STRING(16), allowNull: false },
    device_id: { type: DataTypes.STRING(128), allowNull: false },
    device_name: { type: DataTypes.STRING(128), allowNull: true },
    ip: { type: DataTypes.STRING(64), allowNull: false },
    must_change_password: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    remote_wipe: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
    last_seen_at: { type: DataTypes.DATE, allowNull: false },
    expires_at: { type: DataTypes.DATE, allowNull: false },
    revoked_at: { type: DataTypes.DATE, allowNull: true },
    revoked_reason: { type: DataTypes.STRING(32), allowNull: true },
  });
  await qi.addIndex('user_sessions', ['user_id', 'device_type'], { name: 'user_sessions_user_device_type' });

  await qi.createTable('sms_challenges', {
    challenge_hash: { type: DataTypes.STRING(64), primaryKey: true },
    user_id: { type: DataTypes.INTEGER, allowNull: false, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
    code_hash: { type: DataTypes.STRING(64), allowNull: false },
    device_type: { type: DataTypes.STRING(16), allowNull: false },
    device_id: { type: DataTypes.STRING(128), allowNull: false },
    device_name: { type: DataTypes.STRING(128), allowNull: true },
    ip: { type: DataTypes.STRING(64), allowNull: false },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    created_at: { type: DataTypes.DATE, allowNull: false },
    expires_at: { type: DataTypes.DATE, allowNull: false },
    used_at: { type: DataTypes.DATE, allowNull: true },
  });
  await qi.addIndex('sms_challenges', ['user_id'], { name: 'sms_challenges_user_id' });

  // kind 'range': an internal address range (CIDR); kind 'exempt': a person who may log in from anywhere.
  await qi.createTable('login_ip_rules', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    kind: { type: DataTypes.STRING(16), allowNull: false },
    cidr: { type: DataTypes.STRING(64), allowNull: true },
    user_id: { type: DataTypes.INTEGER, allowNull: true, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
    note: { type: DataTypes.STRING(200), allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('login_ip_rules', ['kind'], { name: 'login_ip_rules_kind' });

  await qi.createTable('login_log', {
    id: { type: SEQ, primaryKey: true, autoIncrement: true },
    // NULL when the account named does not exist: failed attempts against unknown accounts are logged too.
    user_id: { type: DataTypes.INTEGER, allowNull: true },
    account: { type: DataTypes.STRING(64), allowNull: false },
    event: { type: DataTypes.STRING(16), allowNull: false },
    reason: { type: DataTypes.STRING(200), allowNull: true },
    ip: { type: DataTypes.STRING(64), allowNull: true },
    device_type: { type: DataTypes.STRING(16), allowNull: true },
    device_id: { type: DataTypes.STRING(128), allowNull: true },
    device_name: { type: DataTypes.STRING(128), allowNull: true },
    session_id: { type: DataTypes.INTEGER, allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('login_log', ['user_id', 'created_at'], { name: 'login_log_user_created' });
  await qi.addIndex('login_log', ['created_at'], { name: 'login_log_created' });

  await qi.createTable('admin_operation_log', {
    id: { type: SEQ, primaryKey: true, autoIncrement: true },
    admin_id: { type: DataTypes.INTEGER, allowNull: true },
    admin_account: { type: DataTypes.STRING(64), allowNull: true },
    action: { type: DataTypes.STRING(200), allowNull: false },
    method: { type: DataTypes.STRING(10), allowNull: true },
    path: { type: DataTypes.STRING(500), allowNull: true },
    params: { type: DataTypes.JSON, allowNull: true },
    outcome: { type: DataTypes.STRING(16), allowNull: false },
    status: { type: DataTypes.INTEGER, allowNull: true },
    error_code: { type: DataTypes.STRING(64), allowNull: true },
    error_message: { type: DataTypes.STRING(500), allowNull: true },
    ip: { type: DataTypes.STRING(64), allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('admin_operation_log', ['admin_account', 'created_at'], { name: 'admin_operation_log_admin_created' });
  await qi.addIndex('admin_operation_log', ['created_at'], { name: 'admin_operation_log_created' });

  await qi.createTable('user_event_log', {
    id: { type: SEQ, primaryKey: true, autoIncrement: true },
    user_id: { type: DataTypes.INTEGER, allowNull: false },
    account: { type: DataTypes.STRING(64), allowNull: true },
    event: { type: DataTypes.STRING(40), allowNull: false },
    actor: { type: DataTypes.STRING(100), allowNull: true },
    detail: { type: DataTypes.JSON, allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('user_event_log', ['user_id', 'created_at'], { name: 'user_event_log_user_created' });
  await qi.addIndex('user_event_log', ['created_at'], { name: 'user_event_log_created' });

  if (dialect === 'postgres') {
    await db.sequelize.query(`CREATE FUNCTION qiao_append_only() RETURNS trigger AS $$
      BEGIN RAISE EXCEPTION '% is append-only: its rows cannot be changed', TG_TABLE_NAME; END $$ LANGUAGE plpgsql`);
    await db.sequelize.query('CREATE TRIGGER admin_operation_log_append_only BEFORE UPDATE ON admin_operation_log FOR EACH ROW EXECUTE FUNCTION qiao_append_only()');
  } else {
    await db.sequelize.query(`CREATE TRIGGER admin_operation_log_append_only BEFORE UPDATE ON admin_operation_log
      BEGIN SELECT RAISE(ABORT, 'admin_operation_log is append-only: its rows cannot be changed'); END`);
  }
};

export const down: MigrationFn = async ({ context: { qi, dialect, db } }) => {
  await db.sequelize.query('DROP TRIGGER IF EXISTS admin_operation_log_append_only' + (dialect === 'postgres' ? ' ON admin_operation_log' : ''));
  if (dialect === 'postgres') await db.sequelize.query('DROP FUNCTION IF EXISTS qiao_append_only()');
  for (const t of ['user_event_log', 'admin_operation_log', 'login_log', 'login_ip_rules', 'sms_challenges', 'user_sessions']) {
    await qi.dropTable(t);
  }
  await qi.removeIndex('users', 'users_locked_at');
  for (const c of ['last_login_at', 'locked_at', 'failed_attempts', 'must_change_password', 'password_changed_at', 'password_hash']) {
    await qi.removeColumn('users', c);
  }
};
