/**
 * How a `HomeserverRequest` (data, as a session emits it) runs against the Promise port, its
 * value tagged as the reducer's `CallResult`. The engine holds the core proposals' calls; each
 * optional feature brings its own (`SessionFeature.calls`), so an engine made without a feature
 * bundles none of its port calls either. Plain promises, no Effect.
 */
import type { HomeserverRequest } from "../homeserver-port.ts"
import { homeserverErrorFrom, type HomeserverRequestOf, type PromiseHomeserverPort } from "../promise-homeserver-port.ts"
import type { CallResult } from "./input.ts"

type Answer = (result: CallResult) => void
type ValueTag = Exclude<CallResult["_tag"], "Failed" | "Done">
type ValueOf<T extends ValueTag | "Done"> = T extends ValueTag ? Extract<CallResult, { _tag: T; value: unknown }>["value"] : unknown

/** Runs one request on the port and hands its result to `answer`; a synchronous throw propagates. */
export type PortCall<R extends HomeserverRequest = HomeserverRequest> = (port: PromiseHomeserverPort, request: R, answer: Answer) => void
export type PortCalls = { readonly [Tag in HomeserverRequest["_tag"]]?: PortCall<HomeserverRequestOf<Tag>> }

const done: CallResult = { _tag: "Done" }

/**
 * The port call that runs `call` (the port method `method`) and tags what it resolves with as
 * `tag`; a rejection becomes a `Failed` result ({@link homeserverErrorFrom}), never an exception.
 *
 * @example const sendToDevice = portCall("sendToDevice", "Done", (port, request: HomeserverRequestOf<"SendToDevice">) => port.sendToDevice(request))
 */
export const portCall =
  <R extends HomeserverRequest, T extends ValueTag | "Done">(method: string, tag: T, call: (port: PromiseHomeserverPort, request: R) => Promise<ValueOf<T>>): PortCall<R> =>
  (port, request, answer) =>
    // Promise.resolve: a port that answers a plain value (not a promise) is still answered.
    void Promise.resolve(call(port, request)).then(
      (value) => answer(tag === "Done" ? done : ({ _tag: tag, value } as CallResult)),
      (thrown: unknown) => answer({ _tag: "Failed", error: homeserverErrorFrom(thrown, method) })
    )

/** The port method a request calls, as error messages name it (`SendEvent` → `sendEvent`). */
export const methodOf = (request: HomeserverRequest): string => request._tag[0]!.toLowerCase() + request._tag.slice(1)
