import { defineConfig } from "vitest/config"

const shared = { testTimeout: 30_000, hookTimeout: 30_000, pool: "forks" as const }
// Our packages export their TypeScript under this condition (their default export is the built
// JavaScript, for those who install them), so tests run on the sources without a build.
const sourceCondition = "@widgethost/source"

export default defineConfig({
  // Vite's defaults (defaultClientConditions / defaultServerConditions) with ours first.
  resolve: { conditions: [sourceCondition, "module", "browser", "development|production"] },
  ssr: { resolve: { conditions: [sourceCondition, "module", "node", "development|production"], externalConditions: [sourceCondition] } },
  test: {
    reporters: ["default"],
    projects: [
      {
        // The root's resolve conditions apply to the project too.
        extends: true,
        test: {
          ...shared,
          name: "all",
          include: ["{core,machines,adapters/*,test/kit}/src/**/*.test.ts", "test/{conformance,model,property,interop,packaging,scenarios,bench}/**/*.test.ts"]
        }
      }
    ]
  }
})
