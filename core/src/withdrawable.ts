/**
 * Something handed to embedder code that may stop being wanted (a prompt, a hook call): its
 * `signal` is made when first read, since Node's AbortController costs microseconds and most
 * callers never look at it. (A prototype getter: destructure or read `x.signal`; a spread copy has
 * no signal.)
 */
export class Withdrawable {
  private controller: AbortController | undefined
  private withdrawn = false

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController()
      if (this.withdrawn) this.controller.abort()
    }
    return this.controller.signal
  }

  /** No longer wanted: the signal aborts (now, or as it is made). */
  withdraw(): void {
    this.withdrawn = true
    this.controller?.abort()
  }
}
