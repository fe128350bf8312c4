-- The job pipeline: relays lease outbox rows before publishing them, and workers record
-- their last sign of life for the recovery sweep.
-- Task.state became a Prisma enum; on SQLite that is still TEXT, so nothing changes there.

-- AlterTable
ALTER TABLE "OutboxMessage" ADD COLUMN "leaseUntil" DATETIME;

-- CreateTable
CREATE TABLE "Worker" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "startedAt" DATETIME NOT NULL,
    "lastSeenAt" DATETIME NOT NULL
);

-- CreateIndex
CREATE INDEX "Worker_lastSeenAt_idx" ON "Worker"("lastSeenAt");
