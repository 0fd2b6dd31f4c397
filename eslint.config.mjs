import tseslint from "typescript-eslint"
import { packageBoundaries } from "./scripts/eslint-package-boundaries.mjs"

export default tseslint.config(
  // test/bench/.*.ts: local scratch files, ignored by git as well.
  // test/bench/results/: run output (the reference twin the bench builds lives there too).
  { ignores: ["**/node_modules/**", "**/dist/**", "test/bench/.*.ts", "test/bench/results/**"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-floating-promises": "error"
    }
  },
  { plugins: { widgethost: packageBoundaries }, rules: { "widgethost/no-relative-import-across-packages": "error" } },
  // The packages that run in browsers import nothing of Node.
  {
    files: ["core/src/**/*.ts", "machines/src/**/*.ts", "adapters/post-message/src/**/*.ts", "adapters/widget-client/src/**/*.ts", "adapters/matrix-js-sdk/src/**/*.ts"],
    ignores: ["**/*.test.ts"],
    rules: { "no-restricted-imports": ["error", { patterns: [{ group: ["node:*"], message: "This package runs in browsers: no Node built-ins." }] }] }
  },
  // Plain JavaScript (the bench's module loader) is in no tsconfig: lint it without type information.
  { files: ["**/*.mjs"], ...tseslint.configs.disableTypeChecked }
)
