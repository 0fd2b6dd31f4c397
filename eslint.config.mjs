import tseslint from "typescript-eslint"

export default tseslint.config(
  // test/bench/.*.ts: local scratch files, ignored by git as well.
  { ignores: ["**/node_modules/**", "**/dist/**", "test/bench/.*.ts"] },
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
  // Plain JavaScript (the bench's module loader) is in no tsconfig: lint it without type information.
  { files: ["**/*.mjs"], ...tseslint.configs.disableTypeChecked }
)
