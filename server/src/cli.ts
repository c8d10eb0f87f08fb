import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { AdminAuth } from './admin/auth.js';
import { openDatabase } from './app.js';
import { adminCommand } from './cli-admin.js';
import { backupCommand, CommandError, masterKeyCommand, OPS_USAGE, restoreCommand } from './cli-ops.js';
import { runPrimary } from './cluster.js';
import { nginxConfigCommand } from './cli-nginx.js';
import { tokenCommand } from './cli-token.js';
import { ConfigError, loadConfig } from './config.js';
import { readRouteFile } from './gateway/routes-config.js';
import { resolveMasterKey } from './keys/master.js';
import { acceptedMasterKeys, openMasterKeys, wrongMasterKeyMessage } from './keys/master-rotation.js';
import { startServer } from './main.js';
import { BackupError } from './store/backup.js';
import { createStore } from './store/index.js';
import { prepareSchema } from './store/compatibility.js';
import { logDestination } from './ops/logging.js';
import { StartError } from './store/start-errors.js';

const USAGE = `Usage: portcullis <command> [options]

Commands:
  serve                 start the service (configuration from the environment; see README)
    --port N  --host H  --data-dir DIR  --issuer URL   override PORT, HOST, PORTCULLIS_DATA_DIR, PORTCULLIS_ISSUER
  migrate               apply pending database migrations and exit
  reset-admin-token     replace the stored operator token and print the new one (server must restart)
  admin …               call a running server's operator API (portcullis admin --help)
  token                 print an access token for a credential (portcullis token --help)
  nginx-config          print an nginx configuration for the gateway routes (portcullis nginx-config --help)
${OPS_USAGE}  help                  show this text
`;

const SERVE_FLAGS = { port: 'PORT', host: 'HOST', 'data-dir': 'PORTCULLIS_DATA_DIR', issuer: 'PORTCULLIS_ISSUER' } as const;

function envWithFlags(args: string[]): NodeJS.ProcessEnv {
  const { values } = parseArgs({
    args,
    options: Object.fromEntries(Object.keys(SERVE_FLAGS).map((k) => [k, { type: 'string' as const }])),
    strict: true,
  });
  const env = { ...process.env };
  for (const [flag, name] of Object.entries(SERVE_FLAGS)) {
    const value = values[flag];
    if (typeof value === 'string') env[name] = value;
  }
  return env;
}

/** What the first start made and the operator must learn once. */
function tellFirstStart(warn: (file: string) => void, firstStart: { masterKeyFile?: string; adminToken?: string }): void {
  if (firstStart.masterKeyFile) warn(firstStart.masterKeyFile);
  if (firstStart.adminToken) {
    // Printed once, straight to the terminal and not through the log; only its hash is stored.
    const token = firstStart.adminToken;
    process.stdout.write(`\nOperator API token (shown once; only its hash is stored):\n\n  ${token}\n\nexport PORTCULLIS_ADMIN_TOKEN=${token}\n\n`);
  }
}

const MASTER_KEY_WARNING =
  'PORTCULLIS_MASTER_KEY is not set: generated a master key in the data dir. Back it up, or set PORTCULLIS_MASTER_KEY in production; without it the signing keys and secrets cannot be read.';

async function serve(args: string[]): Promise<number> {
  const config = loadConfig(envWithFlags(args));
  if (config.workers > 1 && cluster.isPrimary) {
    return runPrimary(config, (firstStart) => tellFirstStart((file) => process.stderr.write(`${MASTER_KEY_WARNING} (${file})\n`), firstStart));
  }
  const server = await startServer(config, { logger: logDestination(config.logFormat) });
  const { app, services } = server;
  tellFirstStart((file) => app.log.warn({ file }, MASTER_KEY_WARNING), services.firstStart);
  app.log.info({ url: server.url, issuer: config.issuer, alg: config.signingAlg }, 'portcullis is listening');

  await new Promise<void>((resolve) => {
    // SIGTERM drains (/readyz 503, still serving for PORTCULLIS_DRAIN_SECONDS); SIGINT, or a second signal, closes at once.
    const stop = (signal: string, drainSeconds: number) => {
      app.log.info({ signal, drain_seconds: drainSeconds }, drainSeconds > 0 ? 'draining: /readyz answers 503, still serving' : 'shutting down');
      server.shutdown(drainSeconds).then(resolve, (err: unknown) => {
        app.log.error({ err }, 'shutdown failed');
        resolve();
      });
    };
    let signals = 0;
    const onSignal = (signal: NodeJS.Signals) => stop(signal, signal === 'SIGTERM' && signals++ === 0 ? config.drainSeconds : 0);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    process.on('SIGHUP', () => {
      const file = config.routesFile;
      if (!file) return app.log.info('SIGHUP: PORTCULLIS_ROUTES is not set; nothing to reload');
      let routes: ReturnType<typeof readRouteFile>;
      try {
        routes = readRouteFile(file);
      } catch (err) {
        return app.log.error({ file, problem: (err as Error).message }, 'SIGHUP: PORTCULLIS_ROUTES not reloaded; the routes in use are unchanged');
      }
      services.gateway.replaceFileRoutes(routes).then(
        () => app.log.info({ file, routes: routes.length }, 'SIGHUP: PORTCULLIS_ROUTES reloaded'),
        (err: unknown) => app.log.error({ err }, 'SIGHUP: gateway routes could not be reloaded'),
      );
    });
  });
  // A cluster worker's channel to its primary would keep it alive after draining.
  if (cluster.isWorker) cluster.worker?.disconnect();
  return 0;
}

async function migrate(): Promise<number> {
  const config = loadConfig();
  const db = openDatabase(config);
  try {
    const applied = await prepareSchema(db, config, { migrate: true });
    process.stdout.write(applied.length ? `applied ${applied.join(', ')}\n` : 'the database is up to date\n');
  } finally {
    await db.destroy();
  }
  return 0;
}

async function resetAdminToken(): Promise<number> {
  const config = loadConfig();
  const { key, file } = resolveMasterKey(config.masterKey, config.dataDir);
  const db = openDatabase(config);
  try {
    await prepareSchema(db, config, { migrate: config.migrateOnStart });
    const store = createStore(db);
    const { pepper } = await openMasterKeys(store.settings, acceptedMasterKeys(config, key), wrongMasterKeyMessage(file));
    const token = await AdminAuth.reset(store.settings, pepper);
    process.stdout.write(`New operator API token (shown once; restart the server to use it):\n\n  ${token}\n`);
  } finally {
    await db.destroy();
  }
  return 0;
}

/** Runs the CLI; returns the exit code. Errors the user can fix print one line, not a stack. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'serve':
        return await serve(rest);
      case 'migrate':
        return await migrate();
      case 'reset-admin-token':
        return await resetAdminToken();
      case 'admin':
        return await adminCommand(rest);
      case 'token':
        return await tokenCommand(rest);
      case 'nginx-config':
        return await nginxConfigCommand(rest);
      case 'backup':
        return await backupCommand(rest);
      case 'restore':
        return await restoreCommand(rest);
      case 'master-key':
        return await masterKeyCommand(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`portcullis: unknown command "${command}"\n\n${USAGE}`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`portcullis: configuration error: ${err.message}\n`);
      return 78; // EX_CONFIG
    }
    if (err instanceof StartError) {
      process.stderr.write(`portcullis: ${err.message}\n`);
      return err.exitCode;
    }
    if (err instanceof BackupError || err instanceof CommandError) {
      process.stderr.write(`portcullis: ${err.message}\n`);
      return 1;
    }
    if (err instanceof TypeError && (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`portcullis: ${err.message}\n`);
      return 2;
    }
    const code = (err as NodeJS.ErrnoException).code;
    const syscall = (err as NodeJS.ErrnoException).syscall;
    // The data dir (its creation, the key file, the SQLite file) rather than the port.
    if ((syscall && syscall !== 'listen' && syscall !== 'bind' && (err as NodeJS.ErrnoException).path) || code === 'SQLITE_CANTOPEN') {
      process.stderr.write(`portcullis: cannot use the data dir (PORTCULLIS_DATA_DIR): ${(err as Error).message}\n`);
      return 1;
    }
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      process.stderr.write(`portcullis: cannot listen: ${(err as Error).message} (check PORT and HOST)\n`);
      return 1;
    }
    process.stderr.write(`portcullis: ${(err as Error).stack ?? String(err)}\n`);
    return 1;
  }
}
