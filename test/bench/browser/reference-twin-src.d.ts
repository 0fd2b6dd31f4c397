/** matrix-widget-api's `src/`, which browser-bench.ts's esbuild aliases this name to: the same API as its `lib/`. */
declare module "matrix-widget-api-src" {
  export * from "matrix-widget-api"
}
