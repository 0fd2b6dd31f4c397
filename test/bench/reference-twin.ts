/**
 * The reference's twin: matrix-widget-api compiled at bench time from the TypeScript `src/` its
 * npm package ships, with the same esbuild settings the bench uses for our code (ESM, node20,
 * no `keepNames`, nothing vendored: its one dependency, `events`, stays external). Its shipped
 * `lib/` is babel output whose class transform gives every transport its own hidden class, so
 * the host window's listeners go megamorphic; the twin shows what the reference's own code costs
 * built as fairly as ours. Both builds run in every comparison.
 */
import { mkdirSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { build } from "esbuild"
import { REFERENCE_PACKAGE_DIR as packageDir, REFERENCE_VERSION as version } from "./reference-names.ts"

export { REFERENCE_TWIN_NAME } from "./reference-names.ts"

type Reference = typeof import("matrix-widget-api")

const here = dirname(fileURLToPath(import.meta.url))
// Inside the repository, so its external `events` import resolves from our node_modules.
const outfile = join(here, "results", ".twin", `matrix-widget-api-${version}-src.mjs`)

const buildTwin = async (): Promise<Reference> => {
  mkdirSync(dirname(outfile), { recursive: true })
  await build({ entryPoints: [join(packageDir, "src", "index.ts")], outfile, bundle: true, packages: "external", format: "esm", platform: "node", target: "node20", logLevel: "silent" })
  return (await import(pathToFileURL(outfile).href)) as Reference
}

export const referenceTwin: Reference = await buildTwin()
