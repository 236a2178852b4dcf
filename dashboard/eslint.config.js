// ESLint: the recommended rules of ESLint and typescript-eslint, with the type
// checker's help (the rules that need types read tsconfig.json). Layout is
// Prettier's business (.prettierrc.json), not ESLint's.
import js from "@eslint/js";
import { defineConfig } from "eslint/config";
import tseslint from "typescript-eslint";

export default defineConfig(
  // Built and generated files, and the browser tests (plain Node scripts driving Chromium).
  { ignores: ["dist/", "src/api-types.ts", "tests/"] },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
  },
  // This file is JavaScript outside tsconfig.json: no types to check it with.
  { files: ["**/*.js"], extends: [tseslint.configs.disableTypeChecked] },
);
