// npm run lint: typescript-eslint's recommended rules over the sources, the tests, the
// bench and the scripts; formatting is prettier's job (npm run format), so its rules are off here.
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/", "dist/", "generated/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // `_name` marks what a signature needs but the body does not use.
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrors: "none" },
      ],
    },
  },
  { files: ["static/**/*.js"], languageOptions: { globals: { ...globals.browser } } },
  {
    // The data-access rule (lib/store/index.ts): all SQL and Prisma calls live in lib/store/.
    // Outside it nothing imports the Prisma client, @prisma/*, a driver or the store's
    // insides; the generated model types (`import type`) and enums (plain values) may be.
    // Exempt: tests/ and bench/, which seed and inspect rows with the client and the drivers
    // to check what the app wrote, and prisma.config.ts, which hands the Prisma CLI its driver.
    files: ["**/*.ts"],
    ignores: ["lib/store/**", "tests/**", "bench/**", "prisma.config.ts"],
    rules: {
      "@typescript-eslint/no-restricted-imports": [
        "error",
        {
          paths: ["better-sqlite3", "pg", "prisma", "prisma/config"].map((name) => ({
            name,
            message: "Database drivers are used in lib/store/ only.",
          })),
          patterns: [
            { group: ["@prisma/*"], message: "Prisma is used in lib/store/ only." },
            {
              group: ["**/generated/*/*", "!**/generated/prisma/enums.ts"],
              allowTypeImports: true,
              message: "The Prisma client is used in lib/store/ only; its types may be imported with `import type`.",
            },
            {
              group: [
                "**/store/db.ts",
                "**/store/sqlite/**",
                "**/store/postgres/**",
                "**/store/queries/*",
                "!**/store/queries/index.ts",
              ],
              message:
                "Go through lib/store/index.ts (the pipeline) or lib/store/queries/index.ts (pages and use cases).",
            },
          ],
        },
      ],
    },
  },
  prettier,
);
