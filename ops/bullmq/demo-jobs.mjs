// Puts demo jobs into the platform's BullMQ queues (one per agent role) with the
// real bullmq package, so the queue panels and the dead-letter alert have data:
// per queue some waiting, prioritized and delayed jobs, one job held active and
// a few failed ones (the dead-letter queue). Prints BullMQ's own
// Queue.getJobCounts() per queue as JSON on stdout (the tests compare it with
// dmobs's collector).
//
//   node ops/bullmq/demo-jobs.mjs [--redis redis://127.0.0.1:6379] [--prefix bull]
//        [--queues strategist,writer,research,outreach,analytics] [--clean]
//
// --clean removes the queues' keys first (Queue.obliterate), so a second run
// gives the same counts.
import { Queue, Worker } from "bullmq";
import IORedis from "ioredis";

function option(name, fallback) {
  const at = process.argv.indexOf(`--${name}`);
  if (at === -1) return fallback;
  const value = process.argv[at + 1];
  if (value === undefined || value.startsWith("--")) {
    console.error(`demo-jobs: --${name} needs a value`);
    process.exit(2);
  }
  return value;
}

// BullMQ 6 takes a ready client in an ES module (ioredis is its optional peer).
const connection = new IORedis(option("redis", process.env.REDIS_URL || "redis://127.0.0.1:6379"), {
  maxRetriesPerRequest: null,
});
const prefix = option("prefix", process.env.DMOBS_BULLMQ_PREFIX || "bull");
const queues = option("queues", "strategist,writer,research,outreach,analytics")
  .split(",")
  .map((name) => name.trim())
  .filter(Boolean);
const clean = process.argv.includes("--clean");

// How busy each agent role's queue is: [waiting, prioritized, delayed, failed].
const SHAPE = {
  strategist: [2, 0, 1, 0],
  writer: [9, 2, 3, 2],
  research: [4, 1, 2, 0],
  outreach: [6, 0, 4, 1],
  analytics: [3, 1, 1, 0],
};

const counts = {};
for (const [index, name] of queues.entries()) {
  const [waiting, prioritized, delayed, failed] = SHAPE[name] || [3, 1, 1, index % 2];
  const queue = new Queue(name, { connection, prefix });
  if (clean) await queue.obliterate({ force: true });
  const tenants = ["acme", "globex", "initech"];
  const data = (i) => ({ tenant: tenants[i % tenants.length], activity: `act_demo_${name}_${i}` });

  // The jobs that will fail and the one held active go first, so a worker takes them.
  for (let i = 0; i < failed + 1; i++) {
    await queue.add("run", data(i), { attempts: 1, removeOnFail: false });
  }
  const worker = new Worker(name, null, { connection, prefix, autorun: false });
  const token = `demo-${process.pid}`;
  for (let i = 0; i < failed; i++) {
    const job = await worker.getNextJob(token);
    await job.moveToFailed(new Error("LLM provider timed out after 3 retries"), token, false);
  }
  // Held active: taken by a worker that is then closed without finishing it,
  // like a worker busy with a long run.
  await worker.getNextJob(token);
  await worker.close(true);

  for (let i = 0; i < waiting; i++) await queue.add("run", data(i));
  for (let i = 0; i < prioritized; i++) await queue.add("run", data(i), { priority: 5 });
  for (let i = 0; i < delayed; i++) {
    await queue.add("run", data(i), { delay: 3_600_000 * (i + 1) });
  }
  counts[name] = await queue.getJobCounts();
  await queue.close();
}
await connection.quit();
console.log(JSON.stringify(counts));
process.exit(0);
