// node board.mjs: serves bull-board (the real @bull-board/api with its express adapter) over
// floh's queue on 127.0.0.1, asks its API what an operator's browser would, and prints that.
import express from "express";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import { connect, queue, QUEUE, finish } from "./common.mjs";

const q = queue(connect());
const serverAdapter = new ExpressAdapter();
serverAdapter.setBasePath("/board");
createBullBoard({ queues: [new BullMQAdapter(q)], serverAdapter });
const app = express();
app.use("/board", serverAdapter.getRouter());
const server = app.listen(0, "127.0.0.1");
await new Promise((resolve) => server.once("listening", resolve));
const base = `http://127.0.0.1:${server.address().port}/board/api`;
const get = async (path) => {
  const response = await fetch(base + path);
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response.json();
};
const failed = await get(`/queues?activeQueue=${QUEUE}&status=failed&page=1&jobsPerPage=50`);
const schedulers = await get(`/job-schedulers`);
const workers = await get(`/queues/${QUEUE}/workers`);
server.close();
await finish({ failed, schedulers, workers }, q);
