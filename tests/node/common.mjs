// Shared by the interop scripts: a connection and queue per the arguments the Rust tests pass.
import { Queue, Worker, QueueEvents } from "bullmq";
import IORedis from "ioredis";

export const QUEUE = "workflow-scheduler";

export function connect() {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  return new IORedis(url, { maxRetriesPerRequest: null });
}

export function prefix() {
  const value = process.env.QUEUE_PREFIX;
  if (!value) throw new Error("QUEUE_PREFIX must be set");
  return value;
}

export function queue(connection) {
  return new Queue(QUEUE, { connection, prefix: prefix() });
}

export { Worker, QueueEvents };

/** Prints `value` as one JSON line and exits. */
export async function finish(value, ...closables) {
  console.log(JSON.stringify(value));
  for (const c of closables) await c.close();
  process.exit(0);
}

/** What a test wants to know about a job. */
export async function describe(q, id) {
  const job = await q.getJob(id);
  if (!job) return null;
  return {
    id: job.id,
    name: job.name,
    data: job.data,
    opts: job.opts,
    state: await job.getState(),
    attemptsMade: job.attemptsMade,
    failedReason: job.failedReason ?? null,
    stacktrace: job.stacktrace ?? [],
    returnvalue: job.returnvalue ?? null,
    timestamp: job.timestamp,
  };
}
