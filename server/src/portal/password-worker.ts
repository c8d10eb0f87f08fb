// A password-hashing thread: argon2id runs here synchronously, on this thread, so it never takes
// one of libuv's threads, which the token endpoint's RSA signing needs.
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort } from 'node:worker_threads';
import { hashSync, verifySync } from '@node-rs/argon2';

// On Linux a thread has its own nice value: this one yields the CPU to the threads that sign
// tokens when both want it. Elsewhere (or without /proc) it simply runs at normal priority.
try {
  const tid = Number(/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1]);
  if (tid > 0) setPriority(tid, 10);
} catch {
  // not Linux, or not allowed: normal priority
}

export type PasswordJob = { id: number; op: 'hash'; password: string; options: object } | { id: number; op: 'verify'; hash: string; password: string };
export type PasswordResult = { id: number; ok: true; value: string | boolean } | { id: number; ok: false; message: string };

parentPort?.on('message', (job: PasswordJob) => {
  let result: PasswordResult;
  try {
    if (job.op === 'hash') result = { id: job.id, ok: true, value: hashSync(job.password, job.options) };
    else {
      let matches = false;
      try {
        matches = verifySync(job.hash, job.password);
      } catch {
        matches = false; // a malformed stored hash is a mismatch, as before
      }
      result = { id: job.id, ok: true, value: matches };
    }
  } catch (err) {
    result = { id: job.id, ok: false, message: (err as Error).message };
  }
  parentPort?.postMessage(result);
});
