/** The run store: runs, their metrics, samples, artifacts, eval results and event log, in SQLite. */
export * from "./runs.ts";
export { migrate, type Migration, MIGRATIONS } from "./migrations.ts";
