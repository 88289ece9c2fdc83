/**
 * player-strings.js: every label of the live player (English, in one object so it can be translated
 * later), and the formats that follow the viewer's own locale: prices, counts, dates, clock times.
 *
 * "{name}" placeholders are filled by t(); the result is plain text and reaches the page through
 * textContent only.
 */

import { formatDuration as formatClock, formatPrice as sharedPrice } from "../vitrine-format.js";

export { formatClock };

export const STRINGS = {
  loading: "Loading the show…",
  not_found: "This show could not be found.",
  load_failed: "The show could not be loaded. Check your connection; we keep trying.",
  missing_params: "This link is missing the shop or the show.",
  scheduled_badge: "Coming up",
  starts_at: "Starts {when}",
  starts_soon: "Starting soon",
  waiting_live: "The page starts the show by itself when it goes live.",
  products_heading: "In this show",
  live_badge: "Live",
  viewers: "{n} watching",
  likes: "{n} likes",
  connecting: "Connecting…",
  waiting_video: "Waiting for the host's video…",
  reconnecting: "Connection lost, reconnecting…",
  connection_lost: "Connection lost.",
  retry: "Try again",
  tap_unmute: "Tap to unmute",
  buy: "Buy",
  buy_aria: "Buy {title} (opens in a new tab)",
  add_to_cart: "Add to cart",
  added: "Added",
  sold_out: "Sold out",
  deal_heading: "Deal",
  deal_left: "{n} left",
  deal_ends_in: "Ends in {time}",
  deal_aria: "Deal on {title}: {price} instead of {was}",
  pinned_products: "Pinned products",
  pinned_message: "Pinned message",
  host: "Host",
  chat_heading: "Chat",
  chat_label: "Say something",
  chat_placeholder: "Say something…",
  send: "Send",
  name_label: "Your name in the chat",
  name_hint: "Pick the name others see next to your messages.",
  name_save: "Start chatting",
  chat_as: "Chatting as {name}",
  change_name: "Change",
  slow_mode: "Slow mode: one message every {n} s",
  muted_self: "The host muted you for a while.",
  too_fast: "You're sending messages too fast. Wait a moment.",
  chat_failed: "Your message could not be sent.",
  banned: "You were removed from this show by the host.",
  react_aria: "React with {reaction}",
  reactions_label: "Reactions",
  ended: "The show has ended. Loading the replay…",
  replay_badge: "Replay",
  replay_part: "Part {n} of {count}",
  no_recording: "There is no recording of this show, but you can read the chat and see the products.",
  recording_failed: "The recording can't be played in this browser.",
  chapters_heading: "Products shown",
  chapter_aria: "Jump to {title} at {time}",
  replay_chat_heading: "Chat replay",
  no_chat: "Nobody chatted during this show.",
  guest: "Guest {n}",
  anonymous: "Guest",
};

export const REACTIONS = [
  ["like", "👍", "like"],
  ["love", "❤️", "love"],
  ["fire", "🔥", "fire"],
  ["clap", "👏", "applause"],
  ["wow", "😮", "wow"],
  ["laugh", "😂", "laughter"],
];

export function t(key, vars = {}) {
  const text = STRINGS[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

/** The viewer's locale: the embed's data-lang, else the browser's. */
export function viewerLocale(lang) {
  const candidates = [lang, ...(navigator.languages || []), navigator.language, "en"];
  for (const candidate of candidates) {
    if (!candidate) continue;
    try {
      return Intl.NumberFormat.supportedLocalesOf([candidate])[0] || "en";
    } catch {
      /* not a language tag: try the next */
    }
  }
  return "en";
}

export function formatCount(locale, n) {
  return new Intl.NumberFormat(locale).format(n);
}

/** A card's price ("129.90", "EUR") in the viewer's locale; an unknown currency is shown as given. */
export function formatPrice(locale, price, currency) {
  return sharedPrice(price, currency, locale);
}

export function formatWhen(locale, ms) {
  return new Intl.DateTimeFormat(locale, { weekday: "short", day: "numeric", month: "short", hour: "numeric",
    minute: "2-digit" }).format(new Date(ms));
}

