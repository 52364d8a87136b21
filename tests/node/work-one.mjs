// node work-one.mjs: a Node worker processes one job, returns {"processedBy": "node"}, and
// prints the job it processed.
import { connect, Worker, QUEUE, prefix, finish } from "./common.mjs";

const worker = new Worker(
  QUEUE,
  async (job) => ({ processedBy: "node", sawName: job.name, sawData: job.data }),
  { connection: connect(), prefix: prefix(), autorun: false },
);
worker.on("completed", async (job, result) => {
  await finish({ id: job.id, name: job.name, data: job.data, result }, worker);
});
worker.run();
setTimeout(() => {
  console.error("no job within 30 s");
  process.exit(1);
}, 30_000);
