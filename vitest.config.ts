import { availableParallelism } from "node:os"
import { defineConfig } from "vitest/config"
import { BaseSequencer, type TestSpecification } from "vitest/node"

const shared = { testTimeout: 30_000, hookTimeout: 30_000, pool: "forks" as const }
// Our packages export their TypeScript under this condition (their default export is the built
// JavaScript, for those who install them), so tests run on the sources without a build.
const sourceCondition = "@widgethost/source"

/**
 * The longest test files of a full run on 2 cores (slowest first; each 15–160 s, most of it
 * waiting on child processes, browsers and homeservers). Started first, so that no long file
 * begins near the end and runs alone while the other worker idles. On a fresh clone vitest has no
 * timings of its own and would start the largest files (by bytes) first; these are small files.
 */
const slowFiles = [
  "test/interop/conform-widget-websocket.test.ts",
  "test/interop/service-bad-input.test.ts",
  "test/interop/conform-host-service.test.ts",
  "test/packaging/packages.test.ts",
  "test/packaging/api-docs.test.ts",
  "test/interop/conform-widget-browser.test.ts",
  "adapters/homeserver-client/src/crypto-store-crash.test.ts",
  "test/interop/homeserver-port-js-sdk.test.ts",
  "test/interop/service-accounts.test.ts",
  "test/interop/service-hosting.test.ts",
  "test/interop/service-restart.test.ts",
  "test/interop/conform-host-reference.test.ts",
  "test/interop/e2ee-cross-signed-js-sdk.test.ts",
  "test/interop/homeserver-port-http.test.ts",
  "test/interop/delayed-events-http.test.ts",
  "test/interop/clear-room-crypto.test.ts",
  "test/interop/element-call.test.ts",
  "adapters/simulator/src/simulate.test.ts",
  "adapters/simulator/src/simulate-workers.test.ts",
  "test/scenarios/smoke.test.ts"
]

class SlowFilesFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>): Promise<Array<TestSpecification>> {
    const rank = (spec: TestSpecification) => {
      const index = slowFiles.findIndex((file) => spec.moduleId.endsWith(`/${file}`))
      return index < 0 ? slowFiles.length : index
    }
    // A stable sort: every other file keeps vitest's own order (its timings, else size).
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b))
  }
}

export default defineConfig({
  // Vite's defaults (defaultClientConditions / defaultServerConditions) with ours first.
  resolve: { conditions: [sourceCondition, "module", "browser", "development|production"] },
  ssr: { resolve: { conditions: [sourceCondition, "module", "node", "development|production"], externalConditions: [sourceCondition] } },
  test: {
    reporters: ["default"],
    // vitest's default is one worker less than the cores: a single worker on a 2-core machine,
    // where the suite then runs file after file while most of its time is spent waiting on
    // child processes, browsers and sockets. Two workers at least; more cores keep the default.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    sequence: { sequencer: SlowFilesFirst },
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
