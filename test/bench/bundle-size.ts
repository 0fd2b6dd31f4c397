/**
 * What a browser app pays to host widgets: our browser entry (the engine and the postMessage
 * transport, with the core they use), lean (`createLeanEngine`, the core proposals only) and
 * with every optional feature (`createEngine`), each against matrix-widget-api's ClientWidgetApi, each bundled
 * the same way (esbuild, minified, browser platform, production defines, tree-shaken), as a
 * client's bundler would. Sizes in KB, minified and gzipped.
 */
import { gzipSync } from "node:zlib"
import { build } from "esbuild"
import type { Row } from "./harness.ts"

export interface Bundle {
  readonly minified: number
  readonly gzipped: number
  /** The modules bundled in, as esbuild's metafile names them (paths relative to the working directory). */
  readonly inputs: ReadonlyArray<string>
  /** Those of `inputs` that put bytes in the output (a module tree-shaken to nothing is an input too). */
  readonly kept: ReadonlyArray<string>
}

/** Bundles `contents` as a client's bundler would; the packaging suite holds our entry to a budget with it. */
export const bundled = async (contents: string): Promise<Bundle> => {
  const result = await build({
    stdin: { contents, resolveDir: import.meta.dirname, loader: "ts", sourcefile: "entry.ts" },
    bundle: true,
    minify: true,
    write: false,
    format: "esm",
    platform: "browser",
    // Our sources (what our dist/ is compiled from, one module per file).
    // "module" too: naming any condition drops esbuild's implicit one, and xstate's ESM build needs it.
    conditions: ["@widgethost/source", "module"],
    define: { "process.env.NODE_ENV": '"production"', global: "globalThis" },
    metafile: true,
    logLevel: "silent"
  })
  const bytes = result.outputFiles[0]!.contents
  const output = Object.values(result.metafile.outputs)[0]!
  const kept = Object.entries(output.inputs).filter(([, input]) => input.bytesInOutput > 0).map(([path]) => path)
  return { minified: bytes.length / 1024, gzipped: gzipSync(bytes, { level: 9 }).length / 1024, inputs: Object.keys(result.metafile.inputs), kept }
}

/** What the bench and the packaging suite bundle: our browser entry, from the sources (`createEngine`, every feature). */
export const browserEntry = `export * from "../packaging/browser-entry.ts"`
/** The lean browser entry: `createLeanEngine` with no optional feature, what a host pays at least. */
export const leanBrowserEntry = `export * from "../packaging/browser-entry-lean.ts"`

export const bundleSize = async (): Promise<Row[]> => {
  const full = await bundled(browserEntry)
  const lean = await bundled(leanBrowserEntry)
  const reference = await bundled(`export { ClientWidgetApi } from "matrix-widget-api"`)
  const row = (ours: Bundle, which: string, metric: "minified" | "gzipped"): Row => ({
    scenario: "10 browser bundle, engine + postMessage transport",
    metric: `KB ${metric}, ${which}`,
    unit: "KB",
    ours: ours[metric],
    against: { name: "matrix-widget-api ClientWidgetApi", value: reference[metric] },
    better: "lower",
    ...(metric === "gzipped" && ours === lean ? { target: { text: "<= 1.5x the reference", minRatio: 1 / 1.5 } } : {})
  })
  return [row(lean, "lean", "minified"), row(lean, "lean", "gzipped"), row(full, "every feature", "minified"), row(full, "every feature", "gzipped")]
}
