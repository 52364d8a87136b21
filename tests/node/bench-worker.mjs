// node bench-worker.mjs N CONCURRENCY: N no-op jobs through a Node bullmq Worker; prints
// jobs/s and the worker process's CPU µs per job (the reference for `just bench`).
import { connect, queue, Worker, QUEUE, prefix, finish } from "./common.mjs";

const [n, concurrency] = process.argv.slice(2).map(Number);
const q = queue(connect());
await q.addBulk(Array.from({ length: n }, (_, i) => ({ name: "noop", data: { i }, opts: { removeOnComplete: 1000 } })));
let done = 0;
const started = process.hrtime.bigint();
const cpuBefore = process.cpuUsage();
const worker = new Worker(QUEUE, async () => ({}), { connection: connect(), prefix: prefix(), concurrency });
await new Promise((resolve) => worker.on("completed", () => { if (++done === n) resolve(); }));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const cpu = process.cpuUsage(cpuBefore);
await q.obliterate({ force: true });
await finish({ jobsPerSecond: n / seconds, cpuMicrosPerJob: (cpu.user + cpu.system) / n }, worker, q);
