import type { MigrationFn } from '../migrator.ts';

/**
 * Open-API applications (Youdu-compatible `/cgi/...`): apps and their keys, access tokens, SSO identify
 * tokens, uploaded media, the durable callback outbox with every delivery attempt, async jobs (org replace
 * all), groups created before they have members, what each app sent, and app badges.
 */
export const up: MigrationFn = async ({ context: { qi, DataTypes, dialect } }) => {
  const SEQ = dialect === 'postgres' ? DataTypes.BIGINT : DataTypes.INTEGER;

  await qi.createTable('openapi_apps', {
    app_id: { type: DataTypes.STRING(64), primaryKey: true },
    // 'app' for admin-created apps; the system app's own id (sysOrgAssistant, …) for built-in ones.
    kind: { type: DataTypes.STRING(32), allowNull: false },
    name: { type: DataTypes.STRING(100), allowNull: false },
    description: { type: DataTypes.STRING(500), allowNull: true },
    logo: { type: DataTypes.TEXT, allowNull: true },
    visible_desktop: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
    visible_mobile: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
    home_url: { type: DataTypes.STRING(2000), allowNull: true },
    aes_key: { type: DataTypes.STRING(64), allowNull: false },
    callback_url: { type: DataTypes.STRING(2000), allowNull: true },
    callback_token: { type: DataTypes.STRING(64), allowNull: true },
    // Chat-partner settings: auto-reply rules and the custom menu (apps/chat-partner.ts).
    auto_reply: { type: DataTypes.JSON, allowNull: true },
    menus: { type: DataTypes.JSON, allowNull: true },
    enabled: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
    updated_at: { type: DataTypes.DATE, allowNull: false },
  });

  await qi.createTable('openapi_tokens', {
    token_hash: { type: DataTypes.STRING(64), primaryKey: true },
    app_id: { type: DataTypes.STRING(64), allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
    expires_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('openapi_tokens', ['expires_at'], { name: 'openapi_tokens_expires_at' });

  // One row per envelope accepted: the same ciphertext twice is a replay (every SDK draws a random prefix).
  await qi.createTable('openapi_envelopes', {
    digest: { type: DataTypes.STRING(64), primaryKey: true },
    expires_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('openapi_envelopes', ['expires_at'], { name: 'openapi_envelopes_expires_at' });

  await qi.createTable('openapi_sso_tokens', {
    token_hash: { type: DataTypes.STRING(64), primaryKey: true },
    user_id: { type: DataTypes.INTEGER, allowNull: false },
    app_id: { type: DataTypes.STRING(64), allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
    expires_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('openapi_sso_tokens', ['expires_at'], { name: 'openapi_sso_tokens_expires_at' });

  await qi.createTable('openapi_media', {
    media_id: { type: DataTypes.STRING(64), primaryKey: true },
    app_id: { type: DataTypes.STRING(64), allowNull: false },
    type: { type: DataTypes.STRING(16), allowNull: false },
    name: { type: DataTypes.STRING(255), allowNull: false },
    size: { type: DataTypes.BIGINT, allowNull: false },
    sha256: { type: DataTypes.STRING(64), allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });

  await qi.createTable('openapi_callbacks', {
    id: { type: SEQ, primaryKey: true, autoIncrement: true },
    app_id: { type: DataTypes.STRING(64), allowNull: false },
    // A job's own callback (org replace all) overrides the app's URL and token.
    url: { type: DataTypes.STRING(2000), allowNull: true },
    token: { type: DataTypes.STRING(64), allowNull: true },
    package_id: { type: DataTypes.STRING(64), allowNull: false },
    message: { type: DataTypes.JSON, allowNull: false },
    status: { type: DataTypes.STRING(16), allowNull: false },
    attempts: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    next_attempt_at: { type: DataTypes.DATE, allowNull: false },
    give_up_at: { type: DataTypes.DATE, allowNull: false },
    last_error: { type: DataTypes.STRING(500), allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
    delivered_at: { type: DataTypes.DATE, allowNull: true },
  });
  await qi.addIndex('openapi_callbacks', ['status', 'next_attempt_at'], { name: 'openapi_callbacks_due' });

  await qi.createTable('openapi_callback_attempts', {
    id: { type: SEQ, primaryKey: true, autoIncrement: true },
    callback_id: { type: DataTypes.BIGINT, allowNull: false },
    attempt: { type: DataTypes.INTEGER, allowNull: false },
    url: { type: DataTypes.STRING(2000), allowNull: false },
    http_status: { type: DataTypes.INTEGER, allowNull: true },
    outcome: { type: DataTypes.STRING(16), allowNull: false },
    error: { type: DataTypes.STRING(500), allowNull: true },
    duration_ms: { type: DataTypes.INTEGER, allowNull: false },
    at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('openapi_callback_attempts', ['callback_id'], { name: 'openapi_callback_attempts_callback' });

  await qi.createTable('openapi_jobs', {
    job_id: { type: DataTypes.STRING(64), primaryKey: true },
    app_id: { type: DataTypes.STRING(64), allowNull: false },
    type: { type: DataTypes.STRING(32), allowNull: false },
    // Youdu's job states: 1 running, 3 done, 4 failed.
    result: { type: DataTypes.INTEGER, allowNull: false },
    description: { type: DataTypes.TEXT, allowNull: true },
    payload: { type: DataTypes.JSON, allowNull: true },
    callback_url: { type: DataTypes.STRING(2000), allowNull: true },
    callback_token: { type: DataTypes.STRING(64), allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
    finished_at: { type: DataTypes.DATE, allowNull: true },
  });

  await qi.createTable('openapi_groups', {
    group_id: { type: DataTypes.STRING(64), primaryKey: true },
    conversation_id: { type: DataTypes.STRING(64), allowNull: true, unique: true },
    name: { type: DataTypes.STRING(200), allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });

  await qi.createTable('openapi_app_messages', {
    id: { type: SEQ, primaryKey: true, autoIncrement: true },
    app_id: { type: DataTypes.STRING(64), allowNull: false },
    msg_type: { type: DataTypes.STRING(32), allowNull: false },
    recipients: { type: DataTypes.JSON, allowNull: false },
    message: { type: DataTypes.JSON, allowNull: false },
    // How it reached people: the im broadcast id(s), or why it could not.
    delivery: { type: DataTypes.JSON, allowNull: true },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('openapi_app_messages', ['app_id', 'id'], { name: 'openapi_app_messages_app' });

  await qi.createTable('openapi_badges', {
    app_id: { type: DataTypes.STRING(64), primaryKey: true },
    user_id: { type: DataTypes.INTEGER, primaryKey: true },
    count: { type: DataTypes.INTEGER, allowNull: false },
    tip: { type: DataTypes.STRING(200), allowNull: true },
    updated_at: { type: DataTypes.DATE, allowNull: false },
  });
};

export const down: MigrationFn = async ({ context: { qi } }) => {
  for (const t of [
    'openapi_badges',
    'openapi_app_messages',
    'openapi_groups',
    'openapi_jobs',
    'openapi_callback_attempts',
    'openapi_callbacks',
    'openapi_media',
    'openapi_sso_tokens',
    'openapi_envelopes',
    'openapi_tokens',
    'openapi_apps',
  ]) {
    await qi.dropTable(t);
  }
};
