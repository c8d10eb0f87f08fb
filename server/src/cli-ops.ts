import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { openDatabase } from './app.js';
import { ConfigError, loadConfig, parseMasterKey } from './config.js';
import { rotateMasterKey } from './keys/master-rotation.js';
import { MASTER_KEY_FILE } from './keys/master.js';
import { backupSqlite, restoreSqlite } from './store/backup.js';
import { createStore } from './store/index.js';

export const OPS_USAGE = `  backup FILE           write a consistent copy of the embedded SQLite store to FILE, while it serves
    --data-dir DIR        (PostgreSQL: use pg_dump, see README "Backups")
  restore FILE          put a backup in place as the data dir's store (server stopped)
    --data-dir DIR  --force   replace a data dir that is not empty
  master-key rotate     re-seal the store under a new master key (README "Rotating the master key")
    --new-key-file FILE   the new key (64 hex characters); the current one from the environment as for serve
`;

/** A command used wrongly or unable to proceed; the message is the one line printed. */
export class CommandError extends Error {
  override name = 'CommandError';
}

const KEY_NOTE = 'It does not hold the master key: keep PORTCULLIS_MASTER_KEY (or the data dir master.key) with it, stored apart.';

function env(dataDir: string | undefined): NodeJS.ProcessEnv {
  return dataDir ? { ...process.env, PORTCULLIS_DATA_DIR: dataDir } : process.env;
}

function onePath(positionals: string[], what: string): string {
  if (positionals.length !== 1 || !positionals[0]) throw new CommandError(`expected one ${what}, got ${positionals.length}`);
  return positionals[0];
}

export async function backupCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { 'data-dir': { type: 'string' } }, allowPositionals: true, strict: true });
  const target = onePath(positionals, 'backup file');
  const config = loadConfig(env(values['data-dir']));
  if (config.databaseUrl) throw new CommandError('DATABASE_URL is set: back up PostgreSQL with pg_dump or point-in-time recovery (README, "Backups")');
  const { file, pages } = await backupSqlite(config.dataDir, target);
  process.stdout.write(`backup written to ${file} (${pages} pages). ${KEY_NOTE}\n`);
  return 0;
}

export async function restoreCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { 'data-dir': { type: 'string' }, force: { type: 'boolean' } },
    allowPositionals: true,
    strict: true,
  });
  const source = onePath(positionals, 'backup file');
  const config = loadConfig(env(values['data-dir']));
  if (config.databaseUrl) throw new CommandError('DATABASE_URL is set: restore PostgreSQL with pg_restore (README, "Backups")');
  const { file } = await restoreSqlite(source, config.dataDir, values.force === true);
  const keyFile = path.join(config.dataDir, MASTER_KEY_FILE);
  const keyHint =
    config.masterKey || existsSync(keyFile) ? '' : ` Put the master key of the backed-up store in PORTCULLIS_MASTER_KEY or ${keyFile} before starting.`;
  process.stdout.write(`restored ${path.resolve(source)} into ${file}.${keyHint}\n`);
  return 0;
}

/** Writes the new key where the old one was read from, atomically, so the next start finds it. */
function replaceKeyFile(file: string, key: Buffer): void {
  const partial = `${file}.new`;
  writeFileSync(partial, `${key.toString('hex')}\n`, { mode: 0o600 });
  renameSync(partial, file);
}

export async function masterKeyCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== 'rotate') throw new CommandError(`unknown master-key command "${sub ?? ''}"; expected: portcullis master-key rotate --new-key-file FILE`);
  const { values } = parseArgs({ args: rest, options: { 'new-key-file': { type: 'string' }, 'data-dir': { type: 'string' } }, strict: true });
  const newKeyFile = values['new-key-file'];
  if (!newKeyFile) throw new CommandError('--new-key-file FILE is required (the new key is never taken from the command line)');
  let text: string;
  try {
    text = readFileSync(newKeyFile, 'utf8');
  } catch (err) {
    throw new ConfigError(`${newKeyFile} cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const next = parseMasterKey(text, newKeyFile);
  const config = loadConfig(env(values['data-dir']));
  const dataDirKey = path.join(config.dataDir, MASTER_KEY_FILE);
  let current = config.masterKey;
  if (!current) {
    if (!existsSync(dataDirKey)) throw new ConfigError(`no current master key: set PORTCULLIS_MASTER_KEY or keep ${dataDirKey}`);
    current = parseMasterKey(readFileSync(dataDirKey, 'utf8'), dataDirKey);
  }
  const db = openDatabase(config);
  try {
    const outcome = await rotateMasterKey(db, createStore(db).settings, current, next);
    if (outcome.state === 'already-rotated') {
      process.stdout.write('the store is already sealed under the new master key; nothing to do\n');
    } else {
      process.stdout.write(`master key rotated: ${outcome.signingKeys} signing keys and the secret-hash key re-sealed under the new key\n`);
    }
    if (!config.masterKey) {
      replaceKeyFile(dataDirKey, next);
      process.stdout.write(`${dataDirKey} now holds the new key\n`);
    } else {
      process.stdout.write('set PORTCULLIS_MASTER_KEY to the new key on every node (README, "Rotating the master key")\n');
    }
  } finally {
    await db.destroy();
  }
  return 0;
}
