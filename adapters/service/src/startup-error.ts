/** A startup failure the user can fix; the CLI prints its message in one line and exits 2. */
export class StartupError extends Error {
  override readonly name = "StartupError"
}
