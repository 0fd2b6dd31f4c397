/**
 * What a session asks of the embedding client, as data: one value per client-side fromWidget
 * action, already checked (capability, shape) by the session's handlers. The engine hands each
 * to the matching hook (or custom action) and feeds the outcome back as `ClientAnswered`.
 */

/** A sticker as MSC2764's `m.sticker` action carries it (`StickerActionRequestData`). */
export interface StickerRequest {
  readonly name: string
  readonly description?: string
  /** What the client copies into the `m.sticker` event's content. */
  readonly content: {
    /** An `mxc://` URI. */
    readonly url: string
    /** `ImageInfo`, as the widget gave it. */
    readonly info: Readonly<Record<string, unknown>>
  }
}

/** An MSC2790 modal button that fits the schema (the others are left out, as the text says). */
export interface ModalButton {
  readonly id: string
  readonly label: string
  /** `m.primary`, `m.secondary`, `m.warning`, `m.danger`, `m.link` or a namespaced kind. */
  readonly kind: string
  readonly disabled?: boolean
}

/**
 * An MSC2790 modal widget definition, with only the keys the MSC covers ("The client should strip
 * any keys off the modal widget definition which are not covered by this MSC").
 */
export interface ModalDefinition {
  readonly type: string
  /** An http(s) URL template. */
  readonly url: string
  readonly name?: string
  readonly data: Readonly<Record<string, unknown>>
  readonly waitForIframeLoad: boolean
  readonly buttons: ReadonlyArray<ModalButton>
}

export type ClientCall =
  /** MSC2931: a `https://matrix.to/#/…` link or a `matrix:` URI. */
  | { readonly _tag: "Navigate"; readonly uri: string }
  /** MSC2764 `set_always_on_screen`. */
  | { readonly _tag: "SetAlwaysOnScreen"; readonly value: boolean }
  /** MSC2764 `m.sticker`: post it in the room the user is viewing. */
  | { readonly _tag: "SendSticker"; readonly sticker: StickerRequest }
  /** MSC2790 `open_modal` from a source widget. */
  | { readonly _tag: "OpenModal"; readonly modal: ModalDefinition }
  /** MSC2790 `set_button_enabled` from a modal widget. */
  | { readonly _tag: "SetButtonEnabled"; readonly button: string; readonly enabled: boolean }
  /** MSC2790 `close_modal` from a modal widget: `data` goes to the source widget. */
  | { readonly _tag: "CloseModal"; readonly data: Readonly<Record<string, unknown>> }
  /** An action the client serves with a handler of its own (`customActions`). */
  | { readonly _tag: "Custom"; readonly action: string; readonly data: Readonly<Record<string, unknown>> }

/** How the client answered: the hook's value, or its refusal (a thrown error, a rejection). */
export type ClientOutcome = { readonly _tag: "Value"; readonly value: unknown } | { readonly _tag: "Refused"; readonly message: string }
