// A password-hashing thread: argon2id runs here synchronously, on this thread, so it never takes
// one of libuv's threads, which the token endpoint's RSA signing needs.
import { parentPort } from 'node:worker_threads';
import { hashSync, verifySync } from '@node-rs/argon2';

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
