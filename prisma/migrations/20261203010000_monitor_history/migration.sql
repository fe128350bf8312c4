-- The monitor's history counts tasks and attempts finished per minute over a window.
CREATE INDEX "Task_finishedAt_idx" ON "Task"("finishedAt");
CREATE INDEX "Task_startedAt_idx" ON "Task"("startedAt");
CREATE INDEX "Attempt_finishedAt_idx" ON "Attempt"("finishedAt");
