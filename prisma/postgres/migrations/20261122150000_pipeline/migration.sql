-- The job pipeline: relays lease outbox rows before publishing them, workers record
-- their last sign of life for the recovery sweep, and the gallery's total is kept by
-- triggers instead of counted on every page view. Task.state becomes an enum in place
-- (Prisma's own diff would drop the column and its data).

-- CreateEnum
CREATE TYPE "TaskState" AS ENUM ('PENDING', 'STARTED', 'RETRY', 'SUCCESS', 'FAILURE', 'REVOKED');

-- AlterTable
ALTER TABLE "Task" ALTER COLUMN "state" DROP DEFAULT,
ALTER COLUMN "state" TYPE "TaskState" USING "state"::"TaskState",
ALTER COLUMN "state" SET DEFAULT 'PENDING';

-- AlterTable
ALTER TABLE "OutboxMessage" ADD COLUMN     "leaseUntil" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "Worker" (
    "id" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "startedAt" TIMESTAMP(3) NOT NULL,
    "lastSeenAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Worker_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Counter" (
    "name" TEXT NOT NULL,
    "value" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "Counter_pkey" PRIMARY KEY ("name")
);

-- CreateIndex
CREATE INDEX "Worker_lastSeenAt_idx" ON "Worker"("lastSeenAt");

-- Photo total, kept by triggers (an upsert that finds the url inserts nothing and fires none).
-- One row would be a lock every storing transaction waits for, so each statement adds its
-- count to one of 16 rows, chosen by its backend; the total is their sum.
INSERT INTO "Counter" ("name", "value") SELECT 'photos:0', COUNT(*) FROM "Photo";
CREATE FUNCTION "Photo_count_insert"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "Counter" ("name", "value") SELECT 'photos:' || (pg_backend_pid() % 16), count(*) FROM inserted
    ON CONFLICT ("name") DO UPDATE SET "value" = "Counter"."value" + EXCLUDED."value";
    RETURN NULL;
END;
$$;
CREATE FUNCTION "Photo_count_delete"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO "Counter" ("name", "value") SELECT 'photos:' || (pg_backend_pid() % 16), -count(*) FROM deleted
    ON CONFLICT ("name") DO UPDATE SET "value" = "Counter"."value" + EXCLUDED."value";
    RETURN NULL;
END;
$$;
CREATE TRIGGER "Photo_count_insert" AFTER INSERT ON "Photo" REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION "Photo_count_insert"();
CREATE TRIGGER "Photo_count_delete" AFTER DELETE ON "Photo" REFERENCING OLD TABLE AS deleted FOR EACH STATEMENT EXECUTE FUNCTION "Photo_count_delete"();
