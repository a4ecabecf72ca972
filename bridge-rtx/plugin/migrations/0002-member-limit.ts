import type { PluginMigration } from '@qiao/plugin-api';

/**
 * Qiao conversations that have more RTX people than an RTX session holds (80), so their messages are not
 * relayed: the members were told once when it began, and are told once when it ends.
 */
export const up: PluginMigration = async ({ context: { qi, DataTypes } }) => {
  await qi.createTable('rtx_bridge_over_limit', {
    conversation_id: { type: DataTypes.STRING(64), primaryKey: true },
    people: { type: DataTypes.INTEGER, allowNull: false },
    since: { type: DataTypes.BIGINT, allowNull: false },
  });
};

export const down: PluginMigration = async ({ context: { qi } }) => {
  await qi.dropTable('rtx_bridge_over_limit');
};
