-- The job pipeline: relays lease outbox rows before publishing them, workers record
-- their last sign of life for the recovery sweep, and the gallery's total is kept by
-- triggers instead of counted on every page view.
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

-- CreateTable
CREATE TABLE "Counter" (
    "name" TEXT NOT NULL PRIMARY KEY,
    "value" INTEGER NOT NULL DEFAULT 0
);

-- Photo total, kept by triggers (an upsert that finds the url inserts nothing and fires none).
INSERT INTO "Counter" ("name", "value") SELECT 'photos', COUNT(*) FROM "Photo";
CREATE TRIGGER "Photo_count_insert" AFTER INSERT ON "Photo" BEGIN
    UPDATE "Counter" SET "value" = "value" + 1 WHERE "name" = 'photos';
END;
CREATE TRIGGER "Photo_count_delete" AFTER DELETE ON "Photo" BEGIN
    UPDATE "Counter" SET "value" = "value" - 1 WHERE "name" = 'photos';
END;
