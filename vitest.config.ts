import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["{core,machines,adapters}/src/**/*.test.ts", "test/{conformance,model,property,interop}/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: "forks",
    reporters: ["default"]
  }
})
