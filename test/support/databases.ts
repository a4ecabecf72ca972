// The per-dialect suite helper lives with the plugin test harness so plugin packages reach it through a
// public entry (`@qiao/plugin-api/testing`); the repository's own tests use the same one.
export * from '../../core/plugin-api/src/test-databases.ts';
