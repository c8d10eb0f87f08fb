import { Worker } from 'node:worker_threads';
import { ApiError } from '../domain/errors.js';
import type { PasswordJob, PasswordResult } from './password-worker.js';

type Pending = { job: PasswordJob; resolve: (value: string | boolean) => void; reject: (err: Error) => void };

/** The portal's answer when the queue is full: 503 with Retry-After, never a growing wait. */
export class PasswordHashingBusyError extends ApiError {
  constructor(retryAfter: number) {
    super(
      503,
      'availability',
      'password-hashing-busy',
      'Service busy',
      `too many sign-ins and sign-ups at once; try again in ${retryAfter} seconds`,
      retryAfter,
    );
  }
}

/**
 * argon2id in a bounded pool of worker threads (started on first use) with a bounded queue. Each
 * worker hashes synchronously on its own thread, so portal load never occupies libuv's thread
 * pool, where the token endpoint signs; past the queue limit callers get a 503 at once.
 */
export class PasswordPool {
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Pending>();
  private readonly queue: Pending[] = [];
  private started = 0;
  private nextId = 1;
  private closed = false;

  constructor(
    private readonly options: { workers: number; queueLimit: number; onRefused?: () => void },
    private readonly argon2: object,
  ) {}

  hash(password: string): Promise<string> {
    return this.run({ id: this.nextId++, op: 'hash', password, options: this.argon2 }) as Promise<string>;
  }

  verify(hash: string, password: string): Promise<boolean> {
    return this.run({ id: this.nextId++, op: 'verify', hash, password }) as Promise<boolean>;
  }

  /** Jobs waiting for a worker (not counting those running). */
  get waiting(): number {
    return this.queue.length;
  }

  private run(job: PasswordJob): Promise<string | boolean> {
    if (this.closed) return Promise.reject(new Error('the password pool is closed'));
    if (this.idle.length === 0 && this.started >= this.options.workers && this.queue.length >= this.options.queueLimit) {
      this.options.onRefused?.();
      return Promise.reject(new PasswordHashingBusyError(Math.max(1, Math.ceil(this.queue.length / (4 * this.options.workers)))));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? (this.started < this.options.workers ? this.spawn() : undefined);
      if (!worker) return;
      const pending = this.queue.shift() as Pending;
      this.busy.set(worker, pending);
      worker.postMessage(pending.job);
    }
  }

  private spawn(): Worker {
    const worker = new Worker(new URL('./password-worker.js', import.meta.url));
    this.started++;
    worker.unref();
    worker.on('message', (result: PasswordResult) => {
      const pending = this.busy.get(worker);
      this.busy.delete(worker);
      if (!this.closed) this.idle.push(worker);
      if (pending) {
        if (result.ok) pending.resolve(result.value);
        else pending.reject(new Error(`password hashing failed: ${result.message}`));
      }
      this.dispatch();
    });
    worker.on('error', (err: Error) => this.lose(worker, err));
    worker.on('exit', (code) => this.lose(worker, new Error(`a password worker exited (code ${code})`)));
    return worker;
  }

  /** A worker that died fails its job, and a new one takes its place for the queue. */
  private lose(worker: Worker, err: Error): void {
    const pending = this.busy.get(worker);
    if (!this.busy.delete(worker) && !this.idle.includes(worker)) return;
    const at = this.idle.indexOf(worker);
    if (at !== -1) this.idle.splice(at, 1);
    this.started--;
    pending?.reject(err);
    if (!this.closed) this.dispatch();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const pending of this.queue.splice(0)) pending.reject(new Error('the server is shutting down'));
    const workers = [...this.idle, ...this.busy.keys()];
    this.idle.length = 0;
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
