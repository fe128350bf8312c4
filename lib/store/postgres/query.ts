// What the PostgreSQL store's statements share: the database's clock, the transitions'
// guards, and how a statement is run.
import { TRANSITIONS, type Transition } from "../../lifecycle/transitions.ts";

export type Row = Record<string, unknown>;

/** A named statement is parsed and planned once per connection (node-postgres prepares it on first use). */
export interface Statement {
  name: string;
  text: string;
}

export type Query = (statement: string | Statement, values?: unknown[]) => Promise<Row[]>;

/** The states a transition may start from, as a condition on an unqualified `state`. */
export const guard = (name: Transition) => `state IN (${TRANSITIONS[name].from.map((s) => `'${s}'`).join(", ")})`;

/** The transaction's start on the database's clock, as the UTC timestamp Prisma stores. */
export const NOW = `(now() AT TIME ZONE 'UTC')`;

/** NOW moved by a number of milliseconds given as the parameter $n. */
export const nowPlus = (n: number) => `(${NOW} + $${n} * interval '1 millisecond')`;
