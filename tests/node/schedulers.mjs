// node schedulers.mjs: the queue's job schedulers as the Node client (and bull-board) sees them.
import { connect, queue, finish } from "./common.mjs";

const q = queue(connect());
const schedulers = await q.getJobSchedulers(0, -1, true);
await finish(
  schedulers.map((s) => ({ key: s.key, name: s.name, pattern: s.pattern, tz: s.tz ?? null, next: s.next, data: s.template?.data ?? null })),
  q,
);
