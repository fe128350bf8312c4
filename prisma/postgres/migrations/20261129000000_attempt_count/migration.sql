-- Task.attempts counted a task's runs while Task.runs held the rows: one word, two things.
-- The count is now attemptCount, and "attempts" means the Attempt rows only.
ALTER TABLE "Task" RENAME COLUMN "attempts" TO "attemptCount";
