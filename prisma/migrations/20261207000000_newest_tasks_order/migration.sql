-- The newest tasks are read by createdAt, then id: with the id in the index, tasks created
-- in the same millisecond come out of the index in order instead of being sorted each time.
DROP INDEX "Task_createdAt_idx";
CREATE INDEX "Task_createdAt_id_idx" ON "Task"("createdAt", "id");
