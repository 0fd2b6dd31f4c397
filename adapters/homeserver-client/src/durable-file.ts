import { mkdir, open, rename } from "node:fs/promises"
import { dirname } from "node:path"

/** temp file, fsync, rename over, fsync the directory: the old or the new file survives a crash. */
export const writeFileDurably = async (file: string, bytes: Uint8Array | string, mode = 0o600): Promise<void> => {
  const tmp = `${file}.${process.pid}.tmp`
  // The directory is there on every write but the first: made only when the open says it is not
  // (a recursive mkdir is a stat per path component, on every save).
  const handle = await open(tmp, "w", mode).catch(async (e: unknown) => {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e
    await mkdir(dirname(file), { recursive: true })
    return open(tmp, "w", mode)
  })
  try {
    await handle.writeFile(bytes)
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(tmp, file)
  await syncDirectory(dirname(file))
}

/** fsyncs a directory, so that a rename or a new file in it survives a crash. */
export const syncDirectory = async (path: string): Promise<void> => {
  const dir = await open(path, "r")
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
