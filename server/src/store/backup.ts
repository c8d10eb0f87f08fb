import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import SqliteDatabase from 'better-sqlite3';
import { SQLITE_FILE } from './db.js';

/** A backup or restore that cannot proceed; the message is the one line the operator sees. */
export class BackupError extends Error {
  override name = 'BackupError';
}

const ALL_PAGES = 0x7fffffff;

/** Files a data directory may hold that a restore leaves in place: the master key belongs beside the data. */
const KEPT_ON_RESTORE = new Set(['master.key']);

/**
 * Copies the embedded store to `target` while servers keep writing to it: SQLite's online backup
 * on its own read-only connection, all pages in one step, i.e. one read transaction (in WAL mode
 * writers go on meanwhile), so the file is one consistent moment and a busy store cannot make the
 * copy restart forever. Written beside `target` first, then renamed.
 */
export async function backupSqlite(dataDir: string, target: string): Promise<{ file: string; pages: number }> {
  const source = path.join(dataDir, SQLITE_FILE);
  if (!existsSync(source)) throw new BackupError(`no store to back up at ${source} (is PORTCULLIS_DATA_DIR right?)`);
  const file = path.resolve(target);
  if (existsSync(file)) throw new BackupError(`${file} already exists; choose a new file name`);
  const partial = `${file}.partial`;
  const db = new SqliteDatabase(source, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    const progress = await db.backup(partial, { progress: () => ALL_PAGES });
    renameSync(partial, file);
    return { file, pages: progress.totalPages };
  } catch (err) {
    rmSync(partial, { force: true });
    if (err instanceof BackupError) throw err;
    throw new BackupError(`backup to ${file} failed: ${(err as Error).message}`);
  } finally {
    db.close();
  }
}

/** Checks that `file` is a whole SQLite file holding a Portcullis store. */
function checkBackup(file: string): void {
  if (!existsSync(file)) throw new BackupError(`${file} does not exist`);
  let db: SqliteDatabase.Database | undefined;
  try {
    db = new SqliteDatabase(file, { readonly: true, fileMustExist: true });
    const integrity = db.pragma('integrity_check', { simple: true });
    if (integrity !== 'ok') throw new BackupError(`${file} is damaged: ${String(integrity)}`);
    const table = db.prepare("select name from sqlite_master where type = 'table' and name = 'portcullis_migrations'").get();
    if (!table) throw new BackupError(`${file} is an SQLite file but not a Portcullis backup`);
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError(`${file} is not a Portcullis backup: ${(err as Error).message}`);
  } finally {
    db?.close();
  }
}

/**
 * Puts a backup in place as the data directory's store. A directory holding anything but the
 * master key is refused unless `force`, since that would replace a live store; the server must
 * be stopped first.
 */
export async function restoreSqlite(backup: string, dataDir: string, force: boolean): Promise<{ file: string }> {
  const from = path.resolve(backup);
  checkBackup(from);
  const dir = path.resolve(dataDir);
  const present = existsSync(dir) ? readdirSync(dir).filter((name) => !KEPT_ON_RESTORE.has(name)) : [];
  if (present.length > 0 && !force) {
    throw new BackupError(
      `${dir} is not empty (${present.slice(0, 3).join(', ')}${present.length > 3 ? ', …' : ''}); stop the server and pass --force to replace its store`,
    );
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const target = path.join(dir, SQLITE_FILE);
  const partial = `${target}.restoring`;
  const db = new SqliteDatabase(from, { readonly: true, fileMustExist: true });
  try {
    await db.backup(partial);
  } catch (err) {
    rmSync(partial, { force: true });
    throw new BackupError(`restore into ${dir} failed: ${(err as Error).message}`);
  } finally {
    db.close();
  }
  // The old store's write-ahead log must not be replayed onto the restored file.
  for (const suffix of ['-wal', '-shm', '-journal']) rmSync(`${target}${suffix}`, { force: true });
  renameSync(partial, target);
  return { file: target };
}
