// Child-process helpers for the benchmark: start a server and wait until it
// answers, run the load generator in its own process, read peak RSS, and make
// sure nothing outlives the orchestrator.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const LOAD_SCRIPT = fileURLToPath(new URL('../load.js', import.meta.url));
const VERBOSE = process.env.BENCH_VERBOSE === '1';

/**
 * The signing threads (libuv's pool) Portcullis's launcher starts with, by the same rule as
 * server/bin/portcullis.cjs (an operator's UV_THREADPOOL_SIZE wins). The peers that sign on the pool
 * get as many, so a comparison is not one pool size against another: Node's default of 4 against
 * Portcullis's 2 on this 2-core machine once cost Portcullis about 4 % of its ratio to the bare signer.
 */
export const SIGNING_THREADS = Number(process.env.UV_THREADPOOL_SIZE) || Math.max(2, availableParallelism());

const live = new Set();

/** Kill every child still running (used on exit, errors and signals). */
/** A positive whole number from the environment, or the fallback; anything else stops the run. */
export function positiveIntEnv(name, fallback) {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

export function killAll(signal = 'SIGKILL') {
  for (const child of live) child.kill(signal);
}

async function freePort() {
  const srv = createServer();
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = srv.address();
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

// Spawn `node <script>` directly (no shell) so child.pid is the node process.
function spawnNode(name, script, args, env, ipc, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, script, ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe', ...(ipc ? ['ipc'] : [])],
  });
  live.add(child);
  child.on('exit', () => live.delete(child));
  const lines = [];
  const keep = (chunk) => {
    if (VERBOSE) process.stderr.write(`[${name}] ${chunk}`);
    lines.push(...chunk.toString().split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - 40));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  return { child, output: () => lines.join('\n') };
}

export function stopChild(child, graceMs = 3000) {
  if (child.exitCode !== null || child.signalCode !== null) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Start `node script ...args` with PORT set to a free loopback port and poll
 * GET readyPath until it answers 200. Throws (after killing the child) if the
 * child exits or is not ready within timeoutMs.
 */
export async function startServer({ name, script, args = [], env = {}, readyPath, timeoutMs = 20_000, ipc = true, nodeArgs = [] }) {
  const port = await freePort();
  const { child, output } = spawnNode(name, script, args, { ...env, PORT: String(port) }, ipc, nodeArgs);
  const base = `http://127.0.0.1:${port}`;
  const stop = () => stopChild(child);
  const fail = async (why) => {
    await stop();
    const log = output();
    throw new Error(`${name} ${why}${log ? `\n--- ${name} output ---\n${log}` : ''}`);
  };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const hint = child.exitCode === 0 ? ` (it exited cleanly: does ${script} start anything when run directly?)` : '';
      await fail(`exited during startup (code ${child.exitCode}, signal ${child.signalCode})${hint}`);
    }
    if (Date.now() > deadline) await fail(`not ready after ${timeoutMs} ms`);
    try {
      const res = await fetch(base + readyPath, {
        signal: AbortSignal.timeout(1000),
      });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  return { name, pid: child.pid, port, base, output, stop };
}

/** Run bench/load.js (autocannon) in a separate process; resolves its summary. */
export async function runLoad(opts) {
  // Options go through the environment, not argv, so the client secret in the
  // request body does not show up in `ps`.
  const { child, output } = spawnNode('load', LOAD_SCRIPT, [], { BENCH_LOAD_OPTS: JSON.stringify(opts) }, true);
  let stdout = '';
  child.stdout.on('data', (chunk) => {
    stdout += chunk;
  });
  const limitMs = ((opts.duration ?? 10) + 30) * 1000;
  const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
  const code = await new Promise((resolve) => child.once('exit', resolve));
  clearTimeout(timer);
  const line = stdout.trim().split('\n').pop();
  if (code !== 0 || !line?.startsWith('{')) {
    throw new Error(`load generator failed (exit ${code})\n${output()}`);
  }
  return JSON.parse(line);
}

function descendants(pid) {
  const found = [];
  let tasks = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return found;
  }
  for (const tid of tasks) {
    let kids = '';
    try {
      kids = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {}
    for (const kid of kids.split(/\s+/).filter(Boolean).map(Number)) {
      found.push(kid, ...descendants(kid));
    }
  }
  return found;
}

/**
 * Peak resident set (VmHWM) of a process in MB, summed with any descendant
 * processes it spawned (e.g. cluster workers). Returns { mb, processes }.
 */
export function peakRss(pid) {
  let kb = 0;
  const pids = [pid, ...descendants(pid)];
  for (const p of pids) {
    const status = readFileSync(`/proc/${p}/status`, 'utf8');
    kb += Number(/^VmHWM:\s+(\d+) kB/m.exec(status)?.[1] ?? 0);
  }
  return { mb: kb / 1024, processes: pids.length };
}

// CPU accounting, in seconds, to tell how much of the machine went to other
// processes during a run (USER_HZ is 100 on Linux).
const TICK = 1 / 100;

/** Busy CPU time of the whole machine since boot (all cores). */
export function machineCpuSeconds() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  return (f[0] + f[1] + f[2] + f[5] + f[6] + f[7]) * TICK;
}

/** CPU time (user + system) used so far by a process and its descendants. */
export function processCpuSeconds(pid) {
  let ticks = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
    } catch {}
  }
  return ticks * TICK;
}
