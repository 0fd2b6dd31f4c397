/**
 * What a browser app pays to host widgets: our browser entry (the engine and the postMessage
 * transport, with the core they use) against matrix-widget-api's ClientWidgetApi, each bundled
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
  return { minified: bytes.length / 1024, gzipped: gzipSync(bytes, { level: 9 }).length / 1024, inputs: Object.keys(result.metafile.inputs) }
}

/** What the bench and the packaging suite bundle: our browser entry, from the sources. */
export const browserEntry = `export * from "../packaging/browser-entry.ts"`

export const bundleSize = async (): Promise<Row[]> => {
  const ours = await bundled(browserEntry)
  const reference = await bundled(`export { ClientWidgetApi } from "matrix-widget-api"`)
  const row = (metric: "minified" | "gzipped"): Row => ({
    scenario: "10 browser bundle, engine + postMessage transport",
    metric: `KB ${metric}`,
    unit: "KB",
    ours: ours[metric],
    against: { name: "matrix-widget-api ClientWidgetApi", value: reference[metric] },
    better: "lower",
    ...(metric === "gzipped" ? { target: { text: "<= 1.5x the reference", minRatio: 1 / 1.5 } } : {})
  })
  return [row("minified"), row("gzipped")]
}
