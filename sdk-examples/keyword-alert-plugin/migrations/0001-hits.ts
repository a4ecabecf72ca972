import type { PluginMigration } from '@qiao/plugin-api';

export const up: PluginMigration = async ({ context: { qi, DataTypes } }) => {
  // Keyed by message id: a redelivered message (after a crash) cannot record a second hit.
  await qi.createTable('keyword_alert_hits', {
    message_id: { type: DataTypes.BIGINT, primaryKey: true },
    conversation_id: { type: DataTypes.STRING(64), allowNull: false },
    sender_id: { type: DataTypes.INTEGER, allowNull: false },
    keyword: { type: DataTypes.STRING(100), allowNull: false },
    text: { type: DataTypes.TEXT, allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
};

export const down: PluginMigration = async ({ context: { qi } }) => {
  await qi.dropTable('keyword_alert_hits');
};
