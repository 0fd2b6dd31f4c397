/** The widget iframe's name in the host page: the page names it so, the tests find it by it. */
export const WIDGET_FRAME = "widget"
