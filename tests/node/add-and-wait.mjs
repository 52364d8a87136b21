// node add-and-wait.mjs NAME DATA_JSON: adds a job the way a Node producer does and waits for
// it to finish; prints the job as `describe` sees it.
import { connect, queue, QueueEvents, QUEUE, prefix, describe, finish } from "./common.mjs";

const [name, data] = process.argv.slice(2);
const connection = connect();
const q = queue(connection);
const events = new QueueEvents(QUEUE, { connection: connect(), prefix: prefix() });
await events.waitUntilReady();
const job = await q.add(name, JSON.parse(data));
try {
  await job.waitUntilFinished(events, 60_000);
} catch (failure) {
  // A failed job is reported like a completed one; the test reads its state.
}
await finish(await describe(q, job.id), events, q);
