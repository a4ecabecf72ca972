import type { MigrationFn } from '../migrator.ts';

type Types = Parameters<MigrationFn>[0]['context']['DataTypes'];

const timestamps = (DataTypes: Types) => ({
  created_at: { type: DataTypes.DATE, allowNull: false },
  updated_at: { type: DataTypes.DATE, allowNull: false },
});

/**
 * The org directory: departments, the users' directory fields, multi-department membership, admin-defined
 * custom fields, visibility rules, and what incremental client sync needs (a version on every row, an org
 * version counter, tombstones for deletions).
 *
 * `version` is the org version of a row's last change; `placement_version` the last change that can move
 * the row in or out of somebody's view (membership, status, a department move), so a delta tells a viewer
 * to drop a row only when that can have happened.
 */
export const up: MigrationFn = async ({ context: { qi, DataTypes } }) => {
  const userColumns: Record<string, object> = {
    gender: { type: DataTypes.STRING(10), allowNull: true },
    mobile: { type: DataTypes.STRING(64), allowNull: true },
    phone: { type: DataTypes.STRING(64), allowNull: true },
    short_number: { type: DataTypes.STRING(32), allowNull: true },
    email: { type: DataTypes.STRING(200), allowNull: true },
    avatar: { type: DataTypes.STRING(200), allowNull: true },
    auth_type: { type: DataTypes.STRING(20), allowNull: false, defaultValue: 'password' },
    custom_fields: { type: DataTypes.JSON, allowNull: true },
    secrecy: { type: DataTypes.JSON, allowNull: true },
    // Which external master owns the record (`rtx`, `ldap`…), and its id there.
    source: { type: DataTypes.STRING(32), allowNull: true },
    external_id: { type: DataTypes.STRING(200), allowNull: true },
    version: { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 },
    placement_version: { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 },
  };
  for (const [name, def] of Object.entries(userColumns)) await qi.addColumn('users', name, def as never);
  await qi.addIndex('users', ['version'], { name: 'users_version' });
  await qi.addIndex('users', ['source', 'external_id'], { name: 'users_source_external_id' });

  await qi.createTable('departments', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    // NULL: a top-level department, directly under the company.
    parent_id: { type: DataTypes.INTEGER, allowNull: true, references: { model: 'departments', key: 'id' } },
    name: { type: DataTypes.STRING(100), allowNull: false },
    alias: { type: DataTypes.STRING(100), allowNull: true, unique: true },
    description: { type: DataTypes.STRING(500), allowNull: true },
    sort_order: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    source: { type: DataTypes.STRING(32), allowNull: true },
    external_id: { type: DataTypes.STRING(200), allowNull: true },
    version: { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 },
    placement_version: { type: DataTypes.BIGINT, allowNull: false, defaultValue: 0 },
    ...timestamps(DataTypes),
  });
  await qi.addIndex('departments', ['parent_id'], { name: 'departments_parent_id' });
  await qi.addIndex('departments', ['version'], { name: 'departments_version' });

  await qi.createTable('user_departments', {
    user_id: { type: DataTypes.INTEGER, primaryKey: true, references: { model: 'users', key: 'id' }, onDelete: 'CASCADE' },
    department_id: { type: DataTypes.INTEGER, primaryKey: true, references: { model: 'departments', key: 'id' } },
    position: { type: DataTypes.STRING(100), allowNull: true },
    // Larger first in the department's list (Youdu's 权重).
    weight: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
  });
  await qi.addIndex('user_departments', ['department_id'], { name: 'user_departments_department_id' });

  await qi.createTable('org_custom_fields', {
    key: { type: DataTypes.STRING(64), primaryKey: true },
    label: { type: DataTypes.STRING(100), allowNull: false },
    type: { type: DataTypes.STRING(20), allowNull: false },
    options: { type: DataTypes.JSON, allowNull: true },
    client_visible: { type: DataTypes.BOOLEAN, allowNull: false, defaultValue: true },
    sort_order: { type: DataTypes.INTEGER, allowNull: false, defaultValue: 0 },
    ...timestamps(DataTypes),
  });

  await qi.createTable('org_visibility_rules', {
    id: { type: DataTypes.INTEGER, primaryKey: true, autoIncrement: true },
    kind: { type: DataTypes.STRING(20), allowNull: false },
    name: { type: DataTypes.STRING(100), allowNull: true },
    targets: { type: DataTypes.JSON, allowNull: false },
    whitelist: { type: DataTypes.JSON, allowNull: false },
    extra_visible: { type: DataTypes.JSON, allowNull: false },
    ...timestamps(DataTypes),
  });

  await qi.createTable('org_tombstones', {
    kind: { type: DataTypes.STRING(20), primaryKey: true },
    object_id: { type: DataTypes.INTEGER, primaryKey: true },
    version: { type: DataTypes.BIGINT, allowNull: false },
    created_at: { type: DataTypes.DATE, allowNull: false },
  });
  await qi.addIndex('org_tombstones', ['version'], { name: 'org_tombstones_version' });

  // version: the org version counter; floor: clients behind it get a reset (older tombstones are gone);
  // view_version: the last change that may alter anybody's view as a whole (rules, display, field set).
  await qi.createTable('org_meta', {
    key: { type: DataTypes.STRING(50), primaryKey: true },
    value: { type: DataTypes.BIGINT, allowNull: false },
  });
  await qi.bulkInsert('org_meta', [
    { key: 'version', value: 0 },
    { key: 'floor', value: 0 },
    { key: 'view_version', value: 0 },
  ]);
};

export const down: MigrationFn = async ({ context: { qi } }) => {
  for (const t of ['org_meta', 'org_tombstones', 'org_visibility_rules', 'org_custom_fields', 'user_departments', 'departments']) {
    await qi.dropTable(t);
  }
  await qi.removeIndex('users', 'users_source_external_id');
  await qi.removeIndex('users', 'users_version');
  for (const c of ['placement_version', 'version', 'external_id', 'source', 'secrecy', 'custom_fields', 'auth_type', 'avatar', 'email', 'short_number', 'phone', 'mobile', 'gender']) {
    await qi.removeColumn('users', c);
  }
};
