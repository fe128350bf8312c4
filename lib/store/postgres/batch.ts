// Group commit for the PostgreSQL store: calls of one kind made while the previous group
// is at the database go to it together, as one multi-row statement or transaction (as
// lib/store/sqlite/connection.ts's writer does on SQLite). Each group is one round trip or a few and one
// commit, where each call alone would be its own, and under load several arrive at once.

/** A group this large goes at once: one statement stays short, and its parameters small. */
const FULL_GROUP = 100;
/**
 * One group of each kind at the database at a time: a group costs PostgreSQL about as much for
 * its statement as for its rows (at ~5 rows a group, twice the CPU per job of ~20), and a second
 * group in flight halved the groups under load.
 */
const GROUPS_IN_FLIGHT = 1;

interface Call<I, O> {
  input: I;
  resolve: (value: O) => void;
  reject: (err: unknown) => void;
}

/**
 * Wraps run (all inputs in, one output per input back, in order) as a function of one
 * input. Calls made while a group is at the database wait and go together with the
 * next; the first goes on the next turn of the event loop. Two calls with the
 * same key never share a group (a multi-row UPDATE changes a row once), so the later
 * waits for the next. If a group fails with an error of PostgreSQL's about its data (not
 * a broken connection), each of its calls is tried alone, so one bad call fails alone.
 */
export function batched<I, O>(
  run: (inputs: I[]) => Promise<O[]>,
  options: { key?: (input: I) => string } = {},
): (input: I) => Promise<O> {
  const { key } = options;
  let queued: Call<I, O>[] = [];
  let running = 0;
  let scheduled = false;

  const settle = async (calls: Call<I, O>[]) => {
    try {
      const outputs = await run(calls.map((c) => c.input));
      calls.forEach((call, i) => call.resolve(outputs[i]!));
    } catch (err) {
      if (calls.length === 1 || !isDataError(err)) for (const call of calls) call.reject(err);
      else await Promise.all(calls.map((call) => settle([call])));
    }
  };
  const take = () => {
    const group: Call<I, O>[] = [];
    const keys = new Set<string>();
    const rest: Call<I, O>[] = [];
    for (const call of queued) {
      const k = key?.(call.input);
      if (group.length >= FULL_GROUP || (k !== undefined && keys.has(k))) rest.push(call);
      else {
        group.push(call);
        if (k !== undefined) keys.add(k);
      }
    }
    queued = rest;
    return group;
  };
  const pump = () => {
    scheduled = false;
    while (running < GROUPS_IN_FLIGHT && queued.length > 0) {
      const group = take();
      running++;
      void settle(group).finally(() => {
        running--;
        pump();
      });
    }
  };
  return (input: I) =>
    new Promise<O>((resolve, reject) => {
      queued.push({ input, resolve, reject });
      if (!scheduled && running < GROUPS_IN_FLIGHT) {
        scheduled = true;
        setImmediate(pump);
      }
    });
}

/**
 * An error PostgreSQL raised about a statement (a SQLSTATE), not one of the connection (class 08) or the server going
 * down (57P).
 */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) && !code.startsWith("08") && !code.startsWith("57P");
}
