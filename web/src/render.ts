// Turns tracked orders into DOM. Texts from the API are set as text, never
// parsed as HTML; the only attributes taken from the answer are a tel: link
// and a banner's appLink (with a safe scheme).
import type { Action, Banner, BannerBlock, ContactType, TrackedOrder } from "./api";
import { clock, type Lang, type Messages } from "./i18n";

type Attrs = Record<string, string>;

/** Creates an element with attributes and children (strings become text). */
export function h(
  tag: string,
  attrs: Attrs = {},
  ...children: Array<Node | string | null | undefined>
): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  for (const c of children) {
    if (c === null || c === undefined) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

/** How a call button looks and who it reaches, per contact type. */
export interface CallStyle {
  /** A modifier class: call--courier, call--place, call--picker. */
  className: string;
  /** Who answers, in the widget's language, for the accessible label. */
  who: string;
}

/**
 * The exhaustive switch over the spec's TrackedOrderButtonContactType: when
 * the spec gains a value, `tsc --noEmit` fails here until the widget
 * handles it. Keep one case per line (a test removes the picker line and
 * expects the type check to fail).
 */
export function callStyle(type: ContactType, m: Messages): CallStyle {
  switch (type) {
    case "courier": return { className: "call--courier", who: m.who.courier };
    case "place": return { className: "call--place", who: m.who.place };
    case "picker": return { className: "call--picker", who: m.who.picker };
    default: return unhandled(type);
  }
}

function unhandled(value: never): never {
  throw new Error(`unhandled contact_type ${JSON.stringify(value)}`);
}

/** The digits a person reads: "<number>,<ext>" stays as the API sent it. */
export function telHref(phone: string): string {
  // Only what a dialler understands; the comma (a pause before the
  // extension) is kept on purpose.
  return "tel:" + phone.replace(/[^0-9+,;#*]/g, "");
}

const phoneIcon =
  '<svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M6.6 10.8a15.1 15.1 0 0 0 6.6 6.6l2.2-2.2a1 1 0 0 1 1-.25c1.1.37 2.3.57 3.6.57a1 1 0 0 1 1 1V20a1 1 0 0 1-1 1A17 17 0 0 1 3 4a1 1 0 0 1 1-1h3.5a1 1 0 0 1 1 1c0 1.25.2 2.45.57 3.57a1 1 0 0 1-.25 1z"/></svg>';
const chatIcon =
  '<svg aria-hidden="true" focusable="false" viewBox="0 0 24 24" width="18" height="18"><path fill="currentColor" d="M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2z"/></svg>';

function icon(svg: string): HTMLElement {
  const span = h("span", { class: "icon" });
  span.innerHTML = svg; // a constant of this file, not data from the API
  return span;
}

/** One action: a tel: link for calls, a button for contact_us. */
export function renderAction(action: Action, m: Messages, orderNr: string): HTMLElement | null {
  switch (action.type) {
    case "call": {
      const phone = action.payload?.phone;
      const type = action.payload?.contact_type;
      if (!phone || !type) return null; // a call nobody can place
      const style = callStyle(type, m);
      return h(
        "a",
        {
          class: `action action--call ${style.className}`,
          href: telHref(phone),
          "data-contact-type": type,
          "aria-label": `${action.title} (${style.who}, ${phone})`,
        },
        icon(phoneIcon),
        h("span", { class: "action-title" }, action.title),
      );
    }
    case "contact_us": {
      const button = h(
        "button",
        { type: "button", class: "action action--contact-us", "aria-label": action.title },
        icon(chatIcon),
        h("span", { class: "action-title" }, action.title),
      );
      button.addEventListener("click", () => {
        // The host app opens its support chat; the widget only tells it.
        button.dispatchEvent(
          new CustomEvent("eot:contact-us", { bubbles: true, detail: { orderNr } }),
        );
        const card = button.closest(".card");
        const note = card?.querySelector<HTMLElement>(".card-note");
        if (note) note.textContent = m.contactUsSent;
      });
      return button;
    }
    default:
      return null; // an action type this widget does not know yet: not shown
  }
}

/** A link the widget may render: http(s) or an app's own scheme, never script. */
export function isSafeLink(link: string): boolean {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(link.trim())?.[1]?.toLowerCase();
  if (!scheme) return false; // relative or malformed: not a link we trust
  return !["javascript", "data", "vbscript", "file", "blob"].includes(scheme);
}

/** A banner: plain text when appLink is null or empty, else a link. */
export function renderBanner(banner: Banner): HTMLElement {
  const link = banner.appLink ?? "";
  const attrs: Attrs = { class: `banner banner--${banner.kind}`, "data-banner-id": banner.id };
  if (link === "" || !isSafeLink(link)) {
    return h("p", attrs, banner.text);
  }
  return h("a", { ...attrs, href: link }, banner.text);
}

function renderBanners(block: BannerBlock, m: Messages): HTMLElement | null {
  const banners = block.banners ?? [];
  if (banners.length === 0) return null;
  return h(
    "div",
    { class: `banners banners--${block.design}`, role: "group", "aria-label": m.bannersLabel },
    ...banners.map(renderBanner),
  );
}

/** A stable key of what a card shows, so unchanged cards are left alone. */
export function cardKey(o: TrackedOrder, lang: Lang): string {
  return lang + JSON.stringify(o);
}

/** One tracked order as a card. */
export function renderCard(o: TrackedOrder, m: Messages, lang: Lang): HTMLElement {
  const nr = o.order.orderNr;
  const titleId = `order-${nr.replace(/[^A-Za-z0-9_-]/g, "_")}-title`;
  const actions = (o.actions ?? [])
    .map((a) => renderAction(a, m, nr))
    .filter((a): a is HTMLElement => a !== null);
  const eta = o.order.eta ? clock(lang, o.order.eta) : "";
  return h(
    "li",
    {
      class: `card card--${o.status}`,
      "data-order-nr": nr,
      "data-status": o.status,
      "data-flow-type": o.order.flowType,
    },
    h(
      "article",
      { "aria-labelledby": titleId },
      h(
        "p",
        { class: "card-meta" },
        h("span", { class: "card-place" }, o.place.name),
        h("span", { class: "card-nr" }, m.orderNr(nr)),
      ),
      h("h2", { class: "card-title", id: titleId }, o.title),
      h("p", { class: "card-description" }, o.description),
      eta ? h("p", { class: "card-eta" }, m.eta(eta)) : null,
      actions.length > 0
        ? h("div", { class: "actions", role: "group", "aria-label": m.actionsLabel }, ...actions)
        : null,
      o.banners ? renderBanners(o.banners, m) : null,
      h("p", { class: "card-note", role: "status" }),
    ),
  );
}
