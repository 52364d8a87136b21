// node inspect.mjs ID: prints the job, and the queue's counts, as the Node client sees them.
import { connect, queue, describe, finish } from "./common.mjs";

const [id] = process.argv.slice(2);
const q = queue(connect());
const counts = await q.getJobCounts("waiting", "active", "delayed", "completed", "failed");
const listed = (await q.getJobs(["waiting", "delayed", "completed", "failed"])).map((j) => j.id);
await finish({ job: await describe(q, id), counts, listed }, q);
