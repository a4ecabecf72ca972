import type { MigrationFn } from '../migrator.ts';

/**
 * Apps as chat partners (seed 001 §3.5.9.4): a person's conversation with an app (type `app`, id
 * `a:<appId>:<userId>`) holds what the person wrote and what the app answered. An app is not a user, so
 * its messages carry `sender_id` 0 and name the app here.
 */
export const up: MigrationFn = async ({ context: { qi, DataTypes } }) => {
  await qi.addColumn('messages', 'sender_app', { type: DataTypes.STRING(64), allowNull: true });
};
