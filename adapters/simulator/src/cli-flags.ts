/**
 * Flag parsing shared by the `widgethost` subcommands. A usage problem is a {@link UsageError}:
 * the command prints its message in one line and exits with code 2.
 */

/** A bad command line: unknown option, missing or malformed value. */
export class UsageError extends Error {
  override readonly name = "UsageError"
}

/**
 * Parses `--flag value`, `--flag=value` and `--flag` options against a known set.
 *
 * @example parseFlags(["--accounts", "3", "--json"], { accounts: "value", json: "switch" }) // { accounts: "3", json: true }
 */
export const parseFlags = (args: ReadonlyArray<string>, known: Readonly<Record<string, "value" | "switch">>): Record<string, string | true> => {
  const flags: Record<string, string | true> = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    const [name, inline] = arg.startsWith("--") ? arg.slice(2).split(/=(.*)/s, 2) : [undefined, undefined]
    const kind = name === undefined ? undefined : known[name]
    if (name === undefined || kind === undefined) throw new UsageError(`unknown option ${arg}`)
    if (kind === "switch") {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`)
      flags[name] = true
    } else {
      const value = inline ?? args[++i]
      if (value === undefined || value === "") throw new UsageError(`option --${name} needs a value`)
      flags[name] = value
    }
  }
  return flags
}
