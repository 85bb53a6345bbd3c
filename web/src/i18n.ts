// The widget's own words (headings, empty and error states). Every text of
// an order card comes from the API, in the language it was asked for.

export type Lang = "ru" | "en";

/** The API's rule (DESIGN §4.1): "en" or "en-*" is English, else Russian. */
export function langOf(requested: string | null | undefined): Lang {
  const l = (requested ?? "").trim().toLowerCase();
  return l === "en" || l.startsWith("en-") ? "en" : "ru";
}

export interface Messages {
  heading: string;
  ordersLabel: string;
  loading: string;
  emptyTitle: string;
  emptyText: string;
  errorTitle: string;
  staleNotice: string;
  retryIn: (seconds: number) => string;
  retryNow: string;
  noEaterTitle: string;
  noEaterText: string;
  eaterLabel: string;
  show: string;
  orderNr: (nr: string) => string;
  eta: (time: string) => string;
  updated: (time: string) => string;
  who: { courier: string; place: string; picker: string };
  contactUsSent: string;
  bannersLabel: string;
  actionsLabel: string;
}

const ru: Messages = {
  heading: "Ваши заказы",
  ordersLabel: "Заказы в пути",
  loading: "Загружаем заказы…",
  emptyTitle: "Активных заказов нет",
  emptyText: "Когда вы оформите заказ, он появится здесь. Страница обновляется сама.",
  errorTitle: "Не получилось загрузить заказы",
  staleNotice: "Нет связи — показываем последние данные.",
  retryIn: (s) => `Попробуем снова через ${s} с.`,
  retryNow: "Обновить сейчас",
  noEaterTitle: "Чьи заказы показать?",
  noEaterText: "Добавьте к адресу ?eater=<id покупателя>, например ?eater=demo.",
  eaterLabel: "ID покупателя",
  show: "Показать",
  orderNr: (nr) => `Заказ № ${nr}`,
  eta: (t) => `Ожидаем к ${t}`,
  updated: (t) => `Обновлено в ${t}`,
  who: { courier: "курьер", place: "заведение", picker: "сборщик" },
  contactUsSent: "Открываем чат с поддержкой…",
  bannersLabel: "Подсказки",
  actionsLabel: "Действия",
};

const en: Messages = {
  heading: "Your orders",
  ordersLabel: "Orders on their way",
  loading: "Loading your orders…",
  emptyTitle: "No active orders",
  emptyText: "Once you place an order it shows up here. This page updates by itself.",
  errorTitle: "Could not load your orders",
  staleNotice: "Offline — showing the last known state.",
  retryIn: (s) => `Trying again in ${s} s.`,
  retryNow: "Refresh now",
  noEaterTitle: "Whose orders?",
  noEaterText: "Add ?eater=<customer id> to the address, e.g. ?eater=demo.",
  eaterLabel: "Customer ID",
  show: "Show",
  orderNr: (nr) => `Order no. ${nr}`,
  eta: (t) => `Expected by ${t}`,
  updated: (t) => `Updated at ${t}`,
  who: { courier: "courier", place: "place", picker: "picker" },
  contactUsSent: "Opening the support chat…",
  bannersLabel: "Tips",
  actionsLabel: "Actions",
};

export function messages(lang: Lang): Messages {
  return lang === "en" ? en : ru;
}

/** A local clock time, "14:05". */
export function clock(lang: Lang, iso: string | Date): string {
  const d = typeof iso === "string" ? new Date(iso) : iso;
  if (Number.isNaN(d.getTime())) return "";
  return d.toLocaleTimeString(lang === "en" ? "en-GB" : "ru-RU", {
    hour: "2-digit",
    minute: "2-digit",
  });
}
