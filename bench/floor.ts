// The floor: a bare Express app answering the bench's POST like GenDog does (JSON body
// parsed, 202 with a small JSON body) and nothing else. Run as a child process by the
// bench; what it manages on this machine, at this moment, is the yardstick for the targets.
import { randomUUID } from "node:crypto";
import express from "express";

const app = express();
app.use(express.json());
app.post("/api/tasks", (req, res) => {
  const { breed, limit } = req.body as { breed?: string; limit?: number };
  res.status(202).location("/api/tasks/x").json({ id: randomUUID(), breed, limit, state: "PENDING" });
});
app.get("/healthz", (_req, res) => void res.json({ ok: true }));
app.listen(Number(process.env.PORT), "127.0.0.1");
