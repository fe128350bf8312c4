-- A FAILURE or REVOKED task can be sent again by hand with a new retry budget: the budget
-- counts from attemptBase, the old attempts stay, and who did it and when is kept. The
-- outbox carries the attempt number the job is published with.
ALTER TABLE "Task" ADD COLUMN "attemptBase" INTEGER NOT NULL DEFAULT 0;
ALTER TABLE "Task" ADD COLUMN "retriedAt" TIMESTAMP(3);
ALTER TABLE "Task" ADD COLUMN "retriedBy" TEXT;
ALTER TABLE "OutboxMessage" ADD COLUMN "attempt" INTEGER NOT NULL DEFAULT 1;
CREATE INDEX "Task_state_error_idx" ON "Task"("state", "error");
