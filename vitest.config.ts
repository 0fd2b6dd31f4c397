import { defineConfig } from "vitest/config"

const shared = { testTimeout: 30_000, hookTimeout: 30_000, pool: "forks" as const }

export default defineConfig({
  test: {
    reporters: ["default"],
    projects: [
      {
        test: {
          ...shared,
          name: "all",
          include: ["{core,machines,adapters}/src/**/*.test.ts", "test/{conformance,model,property,interop}/**/*.test.ts"]
        }
      }
    ]
  }
})
