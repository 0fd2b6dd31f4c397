/**
 * The adaptive warm-up of `interleave` (harness.ts): a contestant is warmed until the rolling
 * median of its last k rounds has stayed within the tolerance for k rounds, at most `warmupCap`
 * rounds, and the count is reported. Contestants here return scripted samples: nothing is timed.
 */
import { describe, expect, it } from "vitest"
import { interleave, settled, type Settings } from "./harness.ts"

const settings: Settings = { quick: true, warmup: 1, warmupCap: 8, stableWindow: 3, stableWithin: 0.02, rounds: 3 }

/** A contestant whose rounds return `samples` in order (then the last one again). */
const scripted = (name: string, samples: ReadonlyArray<number>) => {
  let i = 0
  return { name, round: () => Promise.resolve(samples[Math.min(i++, samples.length - 1)]!) }
}

describe("settled", () => {
  it("needs 2k-1 samples before it can say yes", () => {
    expect(settled([100, 100, 100, 100], settings)).toBe(false)
    expect(settled([100, 100, 100, 100, 100], settings)).toBe(true)
  })

  it("holds within the tolerance and not beyond it", () => {
    expect(settled([100, 101, 99, 100, 101], settings)).toBe(true)
    // Falling by 5 % a round: each rolling median differs from the next by about 5 %.
    expect(settled([100, 95, 90, 85, 80, 76], settings)).toBe(false)
  })

  it("is not fooled by one unchanged step of overlapping windows", () => {
    // The last two windows, (50, 100, 100) and (100, 100, 100), both have a median of 100, but
    // the one before, (50, 50, 100), has 50.
    expect(settled([50, 50, 100, 100, 100], settings)).toBe(false)
  })
})

describe("interleave warm-up", () => {
  it("warms a falling contestant until it settles, a flat one in the fewest rounds", async () => {
    const falling = [200, 150, 120, 100, 100, 100, 100, 100, 100]
    const samples = await interleave(settings, [scripted("falling", falling), scripted("flat", [10])])
    expect(samples.warmups.get("flat")).toEqual({ rounds: 5, stable: true })
    // The medians of the last three windows first agree at round 7 (100, 100, 100); at round 6
    // the window of rounds 2-4 (150, 120, 100) still had 120.
    expect(samples.warmups.get("falling")).toEqual({ rounds: 7, stable: true })
    expect(samples.get("falling")).toEqual([100, 100, 100])
    expect(samples.get("flat")).toEqual([10, 10, 10])
  })

  it("stops at the cap and says the median had not settled", async () => {
    const noisy = [100, 200, 50, 300, 20, 400, 10, 500, 5, 600, 1]
    const samples = await interleave(settings, [scripted("noisy", noisy)])
    expect(samples.warmups.get("noisy")).toEqual({ rounds: 8, stable: false })
    expect(samples.get("noisy")).toEqual([5, 600, 1])
  })

  it("runs no warm-up with a cap of 0", async () => {
    const samples = await interleave({ ...settings, warmup: 0, warmupCap: 0 }, [scripted("cold", [1, 2, 3])])
    expect(samples.warmups.get("cold")).toEqual({ rounds: 0, stable: true })
    expect(samples.get("cold")).toEqual([1, 2, 3])
  })
})
