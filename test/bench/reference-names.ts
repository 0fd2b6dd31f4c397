/**
 * The reference's two builds by name, without building anything: the version comes from the
 * installed package. (reference-twin.ts builds the second one; run.ts only names them.)
 */
import { readFileSync } from "node:fs"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"

export const REFERENCE_PACKAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "node_modules", "matrix-widget-api")
export const REFERENCE_VERSION = (JSON.parse(readFileSync(join(REFERENCE_PACKAGE_DIR, "package.json"), "utf8")) as { version: string }).version

/** The src/ twin's name in the rows (the lib/ build's rows say "matrix-widget-api"). */
export const REFERENCE_TWIN_NAME = `matrix-widget-api ${REFERENCE_VERSION} src/ (esbuild)`

/** Both builds as the README and the JSON describe them: the name in the rows, and what it is. */
export const REFERENCE_BUILD_DESCRIPTIONS: ReadonlyArray<{ readonly name: string; readonly build: string }> = [
  { name: "matrix-widget-api", build: `matrix-widget-api ${REFERENCE_VERSION} lib/: the babel build its npm package ships (what Element Web bundles)` },
  { name: REFERENCE_TWIN_NAME, build: `matrix-widget-api ${REFERENCE_VERSION} src/: the TypeScript its npm package ships, built at bench time by esbuild with our settings (ESM, node20, no keepNames, \`events\` external)` }
]
