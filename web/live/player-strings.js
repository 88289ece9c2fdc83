/**
 * player-strings.js: every label of the live player in English, Chinese, Spanish, French and German
 * (the consult widget's languages), and the formats that follow the viewer's own locale: prices,
 * counts, dates, clock times.
 *
 * "{name}" placeholders are filled by t(); the result is plain text and reaches the page through
 * textContent only. The mechanism (negotiation, fallback to English) is ../vitrine-i18n.js; the
 * player picks its language once, when it is mounted (setPlayerLanguage), as a page shows one show.
 */

import { formatDuration as formatClock, formatPrice as sharedPrice } from "../vitrine-format.js";
import { DEFAULT_LANG, negotiate, translator } from "../vitrine-i18n.js";

export { formatClock };

export const MESSAGES = {};

MESSAGES.en = {
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
  reaction_like: "like",
  reaction_love: "love",
  reaction_fire: "fire",
  reaction_clap: "applause",
  reaction_wow: "wow",
  reaction_laugh: "laughter",
};

MESSAGES.zh = {
  loading: "正在加载直播…",
  not_found: "找不到这场直播。",
  load_failed: "直播加载失败。请检查网络，我们会继续重试。",
  missing_params: "此链接缺少店铺或直播信息。",
  scheduled_badge: "即将开播",
  starts_at: "{when} 开播",
  starts_soon: "马上开播",
  waiting_live: "开播后页面会自动开始播放。",
  products_heading: "本场商品",
  live_badge: "直播中",
  viewers: "{n} 人在看",
  likes: "{n} 个赞",
  connecting: "正在连接…",
  waiting_video: "正在等待主播的画面…",
  reconnecting: "连接已断开，正在重新连接…",
  connection_lost: "连接已断开。",
  retry: "重试",
  tap_unmute: "点击开启声音",
  buy: "购买",
  buy_aria: "购买 {title}（在新标签页打开）",
  add_to_cart: "加入购物车",
  added: "已加入",
  sold_out: "已售罄",
  deal_heading: "限时优惠",
  deal_left: "剩余 {n} 件",
  deal_ends_in: "{time} 后结束",
  deal_aria: "{title} 限时优惠：{price}，原价 {was}",
  pinned_products: "置顶商品",
  pinned_message: "置顶消息",
  host: "主播",
  chat_heading: "聊天",
  chat_label: "说点什么",
  chat_placeholder: "说点什么…",
  send: "发送",
  name_label: "你在聊天中的昵称",
  name_hint: "选一个其他人在你的消息旁看到的昵称。",
  name_save: "开始聊天",
  chat_as: "当前昵称：{name}",
  change_name: "修改",
  slow_mode: "慢速模式：每 {n} 秒可发一条消息",
  muted_self: "主播暂时将你禁言了。",
  too_fast: "你发消息太快了，请稍等一下。",
  chat_failed: "你的消息未能发送。",
  banned: "你已被主播移出这场直播。",
  react_aria: "发送{reaction}",
  reactions_label: "互动表情",
  ended: "直播已结束，正在加载回放…",
  replay_badge: "回放",
  replay_part: "第 {n} 段，共 {count} 段",
  no_recording: "这场直播没有录像，但你仍可以查看聊天记录和商品。",
  recording_failed: "此浏览器无法播放这段录像。",
  chapters_heading: "讲解过的商品",
  chapter_aria: "跳到 {time} 的 {title}",
  replay_chat_heading: "聊天回放",
  no_chat: "这场直播中没有人聊天。",
  guest: "游客 {n}",
  anonymous: "游客",
  reaction_like: "点赞",
  reaction_love: "爱心",
  reaction_fire: "火爆",
  reaction_clap: "鼓掌",
  reaction_wow: "惊叹",
  reaction_laugh: "大笑",
};

MESSAGES.es = {
  loading: "Cargando la transmisión…",
  not_found: "No se encontró esta transmisión.",
  load_failed: "No se pudo cargar la transmisión. Revisa tu conexión; seguimos intentándolo.",
  missing_params: "A este enlace le falta la tienda o la transmisión.",
  scheduled_badge: "Próximamente",
  starts_at: "Empieza {when}",
  starts_soon: "Empieza pronto",
  waiting_live: "La página empezará la transmisión sola cuando esté en directo.",
  products_heading: "En esta transmisión",
  live_badge: "En directo",
  viewers: "Espectadores: {n}",
  likes: "Me gusta: {n}",
  connecting: "Conectando…",
  waiting_video: "Esperando el vídeo del presentador…",
  reconnecting: "Se perdió la conexión, reconectando…",
  connection_lost: "Se perdió la conexión.",
  retry: "Reintentar",
  tap_unmute: "Toca para activar el sonido",
  buy: "Comprar",
  buy_aria: "Comprar {title} (se abre en una pestaña nueva)",
  add_to_cart: "Añadir al carrito",
  added: "Añadido",
  sold_out: "Agotado",
  deal_heading: "Oferta",
  deal_left: "Quedan {n}",
  deal_ends_in: "Termina en {time}",
  deal_aria: "Oferta de {title}: {price} en lugar de {was}",
  pinned_products: "Productos fijados",
  pinned_message: "Mensaje fijado",
  host: "Presentador",
  chat_heading: "Chat",
  chat_label: "Di algo",
  chat_placeholder: "Di algo…",
  send: "Enviar",
  name_label: "Tu nombre en el chat",
  name_hint: "Elige el nombre que los demás ven junto a tus mensajes.",
  name_save: "Empezar a chatear",
  chat_as: "Chateando como {name}",
  change_name: "Cambiar",
  slow_mode: "Modo lento: un mensaje cada {n} s",
  muted_self: "El presentador te ha silenciado un rato.",
  too_fast: "Estás enviando mensajes demasiado rápido. Espera un momento.",
  chat_failed: "No se pudo enviar tu mensaje.",
  banned: "El presentador te ha expulsado de esta transmisión.",
  react_aria: "Reaccionar con {reaction}",
  reactions_label: "Reacciones",
  ended: "La transmisión ha terminado. Cargando la repetición…",
  replay_badge: "Repetición",
  replay_part: "Parte {n} de {count}",
  no_recording: "No hay grabación de esta transmisión, pero puedes leer el chat y ver los productos.",
  recording_failed: "La grabación no se puede reproducir en este navegador.",
  chapters_heading: "Productos mostrados",
  chapter_aria: "Ir a {title} en {time}",
  replay_chat_heading: "Repetición del chat",
  no_chat: "Nadie escribió en el chat durante esta transmisión.",
  guest: "Invitado {n}",
  anonymous: "Invitado",
  reaction_like: "me gusta",
  reaction_love: "me encanta",
  reaction_fire: "fuego",
  reaction_clap: "aplausos",
  reaction_wow: "asombro",
  reaction_laugh: "risas",
};

MESSAGES.fr = {
  loading: "Chargement du live…",
  not_found: "Ce live est introuvable.",
  load_failed: "Le live n'a pas pu être chargé. Vérifiez votre connexion ; nous réessayons.",
  missing_params: "Il manque la boutique ou le live dans ce lien.",
  scheduled_badge: "À venir",
  starts_at: "Début {when}",
  starts_soon: "Ça commence bientôt",
  waiting_live: "La page lance le live d'elle-même dès qu'il commence.",
  products_heading: "Dans ce live",
  live_badge: "En direct",
  viewers: "Spectateurs : {n}",
  likes: "J'aime : {n}",
  connecting: "Connexion…",
  waiting_video: "En attente de la vidéo de l'animateur…",
  reconnecting: "Connexion perdue, reconnexion…",
  connection_lost: "Connexion perdue.",
  retry: "Réessayer",
  tap_unmute: "Touchez pour activer le son",
  buy: "Acheter",
  buy_aria: "Acheter {title} (s'ouvre dans un nouvel onglet)",
  add_to_cart: "Ajouter au panier",
  added: "Ajouté",
  sold_out: "Épuisé",
  deal_heading: "Offre",
  deal_left: "Plus que {n}",
  deal_ends_in: "Se termine dans {time}",
  deal_aria: "Offre sur {title} : {price} au lieu de {was}",
  pinned_products: "Produits épinglés",
  pinned_message: "Message épinglé",
  host: "Animateur",
  chat_heading: "Chat",
  chat_label: "Dites quelque chose",
  chat_placeholder: "Dites quelque chose…",
  send: "Envoyer",
  name_label: "Votre nom dans le chat",
  name_hint: "Choisissez le nom que les autres voient à côté de vos messages.",
  name_save: "Commencer à discuter",
  chat_as: "Vous discutez en tant que {name}",
  change_name: "Modifier",
  slow_mode: "Mode lent : un message toutes les {n} s",
  muted_self: "L'animateur vous a rendu muet pour un moment.",
  too_fast: "Vous envoyez des messages trop vite. Patientez un instant.",
  chat_failed: "Votre message n'a pas pu être envoyé.",
  banned: "L'animateur vous a retiré de ce live.",
  react_aria: "Réagir avec {reaction}",
  reactions_label: "Réactions",
  ended: "Le live est terminé. Chargement du replay…",
  replay_badge: "Replay",
  replay_part: "Partie {n} sur {count}",
  no_recording: "Ce live n'a pas été enregistré, mais vous pouvez lire le chat et voir les produits.",
  recording_failed: "L'enregistrement ne peut pas être lu dans ce navigateur.",
  chapters_heading: "Produits présentés",
  chapter_aria: "Aller à {title} à {time}",
  replay_chat_heading: "Replay du chat",
  no_chat: "Personne n'a écrit dans le chat pendant ce live.",
  guest: "Invité {n}",
  anonymous: "Invité",
  reaction_like: "j'aime",
  reaction_love: "cœur",
  reaction_fire: "feu",
  reaction_clap: "applaudissements",
  reaction_wow: "waouh",
  reaction_laugh: "rires",
};

MESSAGES.de = {
  loading: "Die Show wird geladen…",
  not_found: "Diese Show wurde nicht gefunden.",
  load_failed: "Die Show konnte nicht geladen werden. Prüf deine Verbindung; wir versuchen es weiter.",
  missing_params: "In diesem Link fehlen der Shop oder die Show.",
  scheduled_badge: "Demnächst",
  starts_at: "Beginnt {when}",
  starts_soon: "Beginnt gleich",
  waiting_live: "Die Seite startet die Show von selbst, sobald sie live ist.",
  products_heading: "In dieser Show",
  live_badge: "Live",
  viewers: "Zuschauer: {n}",
  likes: "Likes: {n}",
  connecting: "Verbindung wird hergestellt…",
  waiting_video: "Warten auf das Video des Hosts…",
  reconnecting: "Verbindung verloren, neue Verbindung wird hergestellt…",
  connection_lost: "Verbindung verloren.",
  retry: "Erneut versuchen",
  tap_unmute: "Tippen, um den Ton einzuschalten",
  buy: "Kaufen",
  buy_aria: "{title} kaufen (öffnet in einem neuen Tab)",
  add_to_cart: "In den Warenkorb",
  added: "Hinzugefügt",
  sold_out: "Ausverkauft",
  deal_heading: "Angebot",
  deal_left: "Noch {n}",
  deal_ends_in: "Endet in {time}",
  deal_aria: "Angebot für {title}: {price} statt {was}",
  pinned_products: "Angeheftete Produkte",
  pinned_message: "Angeheftete Nachricht",
  host: "Host",
  chat_heading: "Chat",
  chat_label: "Schreib etwas",
  chat_placeholder: "Schreib etwas…",
  send: "Senden",
  name_label: "Dein Name im Chat",
  name_hint: "Wähle den Namen, den andere neben deinen Nachrichten sehen.",
  name_save: "Chat starten",
  chat_as: "Du chattest als {name}",
  change_name: "Ändern",
  slow_mode: "Langsamer Modus: eine Nachricht alle {n} s",
  muted_self: "Der Host hat dich vorübergehend stummgeschaltet.",
  too_fast: "Du sendest zu schnell Nachrichten. Warte einen Moment.",
  chat_failed: "Deine Nachricht konnte nicht gesendet werden.",
  banned: "Der Host hat dich aus dieser Show entfernt.",
  react_aria: "Mit {reaction} reagieren",
  reactions_label: "Reaktionen",
  ended: "Die Show ist vorbei. Die Aufzeichnung wird geladen…",
  replay_badge: "Aufzeichnung",
  replay_part: "Teil {n} von {count}",
  no_recording: "Von dieser Show gibt es keine Aufnahme, aber du kannst den Chat lesen und die Produkte ansehen.",
  recording_failed: "Die Aufnahme kann in diesem Browser nicht abgespielt werden.",
  chapters_heading: "Gezeigte Produkte",
  chapter_aria: "Zu {title} bei {time} springen",
  replay_chat_heading: "Chat-Verlauf",
  no_chat: "Während dieser Show hat niemand gechattet.",
  guest: "Gast {n}",
  anonymous: "Gast",
  reaction_like: "Daumen hoch",
  reaction_love: "Herz",
  reaction_fire: "Feuer",
  reaction_clap: "Applaus",
  reaction_wow: "Staunen",
  reaction_laugh: "Lachen",
};

export const LANGUAGES = Object.keys(MESSAGES);

/** The player's language, picked at mount: the embed's data-lang (or ?lang=), else the browser's. */
let current = DEFAULT_LANG;
let translate = translator(MESSAGES, DEFAULT_LANG);

/** Use `lang` (a tag, or null for the browser's languages) for every text; returns the language picked. */
export function setPlayerLanguage(lang) {
  current = negotiate(LANGUAGES, { explicit: lang });
  translate = translator(MESSAGES, current);
  return current;
}

export function playerLanguage() {
  return current;
}

/** [reaction, emoji, key of its name]. */
export const REACTIONS = [
  ["like", "👍", "reaction_like"],
  ["love", "❤️", "reaction_love"],
  ["fire", "🔥", "reaction_fire"],
  ["clap", "👏", "reaction_clap"],
  ["wow", "😮", "reaction_wow"],
  ["laugh", "😂", "reaction_laugh"],
];

/** A label in the player's language (English when a language lacks it), "{name}" placeholders filled. */
export function t(key, vars = {}) {
  return translate(key, vars);
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

