/**
 * How the simulator starts its worker threads, from `dist` (plain JavaScript) or from source
 * (tsx, vitest), where the TypeScript loader must be registered inside the thread first.
 */
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { dirname, join } from "node:path"
import { pathToFileURL } from "node:url"
import type { WorkerOptions } from "node:worker_threads"
import { SimulationError } from "./simulate-options.ts"

/**
 * The ESM build of `tsx/esm/api` (require.resolve would give its CommonJS build, which cannot
 * register the hooks), read from tsx's own exports map.
 */
const tsxEsmApi = (from: string): string => {
  const manifest = createRequire(from).resolve("tsx/package.json")
  const exports = (JSON.parse(readFileSync(manifest, "utf8")) as { exports: Record<string, { import: { default: string } }> }).exports
  const api = exports["./esm/api"]?.import.default
  if (api === undefined) throw new SimulationError("tsx has no ./esm/api export: cannot start workers from source")
  return pathToFileURL(join(dirname(manifest), api)).href
}

/** How to start the worker module `name` (a sibling of this file): from source (tsx, vitest) the loader is registered in the thread first. */
export const workerEntry = (name: string): { readonly entry: string | URL; readonly options: WorkerOptions } => {
  const here = import.meta.url
  // The parent's own flags (`--input-type`, `--eval`…) are not for the worker: it gets none.
  if (!here.endsWith(".ts")) return { entry: new URL(`./${name}.js`, here), options: { execArgv: [] } }
  // Node 20 does not apply `--import tsx` to a worker's entry; registering it by hand does.
  const tsx = tsxEsmApi(here)
  const file = new URL(`./${name}.ts`, here).href
  return {
    entry: `import(${JSON.stringify(tsx)}).then((tsx) => tsx.register()).then(() => import(${JSON.stringify(file)}))`,
    options: { eval: true, execArgv: ["--conditions=@widgethost/source"] }
  }
}

