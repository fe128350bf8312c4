-- The audit trail: who did what from the monitor or the API, and when. Read newest first,
-- by id (the primary key), so it needs no index of its own.
CREATE TABLE "AuditEntry" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "target" TEXT NOT NULL,
    "count" INTEGER NOT NULL DEFAULT 1,
    "detail" TEXT
);
