// Prisma's PostgreSQL driver adapter, as the migration CLI and the app use it.
import { PrismaPg } from "@prisma/adapter-pg";

const NAME_OID = 19;
const TEXT_OID = 25;
let patched = false;

/**
 * Two fixes for `prisma migrate deploy` through the adapter:
 * - it cannot read PostgreSQL's `name` type (OID 19), met while describing the schema:
 *   "Column type 'name' could not be deserialized" (prisma/orm#27403, open). `name` is
 *   text of at most 63 bytes, so it is reported as text;
 * - it runs a migration by splitting it at every ";", which cuts a function body apart.
 *   PostgreSQL runs a whole script sent as one simple query, so it is sent whole.
 */
export function postgresAdapter(connectionString: string): PrismaPg {
  const factory = new PrismaPg({ connectionString, max: 10 });
  const connect = factory.connect.bind(factory);
  factory.connect = async () => {
    const adapter = await connect();
    const driver = adapter.underlyingDriver() as { query(text: string): Promise<unknown> };
    // onError turns a driver error into the kind Prisma reports (and throws it). A script
    // that failed is never run again: its first statements may have been applied.
    const { onError } = adapter as unknown as { onError(err: unknown): never };
    adapter.executeScript = async (script: string) => {
      try {
        await driver.query(script);
      } catch (err) {
        onError.call(adapter, err);
      }
    };
    if (!patched) {
      // performIO lives on the queryable base class shared by the adapter and its transactions.
      const queryable = Object.getPrototypeOf(Object.getPrototypeOf(adapter)) as {
        performIO: (query: unknown) => Promise<{ fields: { dataTypeID: number }[] }>;
      };
      const performIO = queryable.performIO;
      queryable.performIO = async function (this: unknown, query: unknown) {
        const result = await performIO.call(this, query);
        for (const field of result.fields) if (field.dataTypeID === NAME_OID) field.dataTypeID = TEXT_OID;
        return result;
      };
      patched = true;
    }
    return adapter;
  };
  return factory;
}
