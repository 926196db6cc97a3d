/**
 * The run store's schema, as an ordered list of migrations. A database records the last one applied in
 * `schema_version`; opening it applies the rest in order, each in its own transaction. Never edit a migration
 * that has shipped: append a new one.
 */
import type { DatabaseSync } from "node:sqlite";

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: "runs, per-step metrics, samples, artifacts and the append-only event log",
    sql: `
      CREATE TABLE runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        name TEXT NOT NULL,
        config TEXT NOT NULL,
        status TEXT NOT NULL
          CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'interrupted')),
        resume INTEGER NOT NULL DEFAULT 0,
        created_at INTEGER NOT NULL,
        queue_position INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        step INTEGER NOT NULL DEFAULT 0,
        total_steps INTEGER,
        eval_results TEXT NOT NULL DEFAULT '{}',
        error TEXT
      );
      CREATE INDEX runs_queue ON runs (status, queue_position);
      CREATE TABLE metrics (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        loss REAL,
        lr REAL,
        grad_norm REAL,
        tokens_per_second REAL,
        gpu_bytes INTEGER,
        t INTEGER NOT NULL
      );
      CREATE INDEX metrics_run ON metrics (run_id, id);
      CREATE TABLE samples (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        prompt TEXT NOT NULL,
        output TEXT NOT NULL,
        t INTEGER NOT NULL
      );
      CREATE INDEX samples_run ON samples (run_id, id);
      CREATE TABLE artifacts (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        t INTEGER NOT NULL,
        PRIMARY KEY (run_id, name)
      );
      CREATE TABLE events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        type TEXT NOT NULL,
        payload TEXT NOT NULL,
        t INTEGER NOT NULL
      );
      CREATE INDEX events_run ON events (run_id, id);
    `,
  },
];

/** Brings `db` up to the last migration; returns the schema version it ends at. */
export function migrate(db: DatabaseSync, migrations: readonly Migration[] = MIGRATIONS): number {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = db.prepare("SELECT MAX(version) AS version FROM schema_version").get() as
    | { version: number | null }
    | undefined;
  const current = row?.version ?? 0;
  const latest = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  if (current > latest) {
    throw new RangeError(
      `the run store is at schema version ${current}, newer than this Ostrota knows (${latest}): ` +
        `update Ostrota or point OSTROTA_HOME at another folder`,
    );
  }
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(migration.sql);
      db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(migration.version);
      db.exec("COMMIT");
    } catch (err) {
      db.exec("ROLLBACK");
      throw err;
    }
  }
  return Math.max(current, latest);
}
