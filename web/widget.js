/*
 * Vitrine video consult: the one line a shop puts on its product pages.
 *
 *   <script src="https://VITRINE_HOST/widget.js" data-shop="SHOP" data-product="SKU" async></script>
 *
 * Optional: data-lang="fr" (override the browser's language), data-name="Ada" (the shopper's name),
 * data-launcher="off" (no floating button: call window.VitrineConsult.open() from your own).
 *
 * A classic script on purpose (it must run from a plain <script> tag anywhere): it creates a
 * <vitrine-consult> element with an open shadow root, so the shop's CSS cannot reach in and ours
 * cannot leak out, loads VITRINE_HOST/widget/widget.css into it and imports the ES module
 * VITRINE_HOST/widget/app.js, which renders everything.
 *
 * It never throws into the host page, and never loads twice for the same shop.
 *
 * A live show instead (player, chat, pinned products, then the replay; see web/live/player.js):
 *
 *   <script src="https://VITRINE_HOST/widget.js" data-shop="SHOP" data-show="SHOW_ID" async></script>
 *
 * It puts a <vitrine-live> element right after the script tag, or inside the element that
 * data-target="CSS selector" names. Its "Add to cart" dispatches the same vitrine:add-to-cart
 * event, with e.detail { sku, show, title, price, currency, url }.
 *
 * For shops:
 *   window.VitrineConsult.open()             open the panel (for your own button)
 *   window.VitrineConsult.close()
 *   window.VitrineConsult.setProduct("SKU")  a single-page shop changed product
 *   document.addEventListener("vitrine:add-to-cart", (e) => addToCart(e.detail.sku))
 *     e.detail: { sku, title, price, currency, url } from a product card the advisor showed
 */
(function () {
  "use strict";

  var TAG = "vitrine-consult";
  var LIVE_TAG = "vitrine-live";

  function warn(message, err) {
    try {
      console.warn("vitrine consult: " + message, err && (err.message || err.name || err));
    } catch (ignored) {
      /* no console */
    }
  }

  function findScript() {
    if (document.currentScript) return document.currentScript;
    // Some loaders run us without currentScript: take the last matching tag.
    var candidates = document.querySelectorAll("script[src][data-shop]");
    for (var i = candidates.length - 1; i >= 0; i -= 1) {
      if (/\/widget\.js(?:[?#]|$)/.test(candidates[i].src)) return candidates[i];
    }
    return null;
  }

  // One registry per page, shared by every copy of this script (one per shop at most).
  var api = window.VitrineConsult;
  if (!api || typeof api !== "object" || !api._instances) {
    var instances = {};
    api = {
      _instances: instances,
      /** Open the panel of `shop` (default: the only or first shop on the page). */
      open: function (shop) { call(shop, "open"); },
      close: function (shop) { call(shop, "close"); },
      setProduct: function (sku, shop) { call(shop, "setProduct", sku); },
    };
    var call = function (shop, method, arg) {
      try {
        var key = shop || Object.keys(instances)[0];
        var entry = key && instances[key];
        if (!entry) return warn("no widget on this page" + (shop ? " for shop " + shop : ""));
        if (entry.app) entry.app[method](arg);
        else entry.pending.push([method, arg]); // still loading: replay once mounted
      } catch (err) {
        warn(method + "() failed:", err);
      }
    };
    try {
      window.VitrineConsult = api;
    } catch (err) {
      warn("could not expose window.VitrineConsult:", err);
    }
  }

  try {
    var script = findScript();
    var shop = script && (script.getAttribute("data-shop") || "").trim();
    if (!shop) {
      warn('the <script> tag needs data-shop="your-shop-id"');
      return;
    }
    var liveShow = (script.getAttribute("data-show") || "").trim();
    if (liveShow) {
      startLive(script, shop, liveShow); // the live show player instead of the consult button
      return;
    }
    if (api._instances[shop]) return; // already on this page
    if (!window.customElements || !HTMLElement.prototype.attachShadow) {
      warn("this browser cannot show the video consult (no custom elements or shadow DOM)");
      return;
    }
    api._instances[shop] = { app: null, pending: [] };
    if (document.body) {
      start(script, shop);
    } else {
      // In <head> without async or defer: wait for the body.
      document.addEventListener("DOMContentLoaded", function () { start(script, shop); });
    }
  } catch (err) {
    warn("could not start:", err);
  }

  function start(script, shop) {
    try {
      var entry = api._instances[shop];
      var base = new URL(script.src, document.baseURI).origin;

      if (!customElements.get(TAG)) {
        customElements.define(TAG, class extends HTMLElement {});
      }
      var host = document.createElement(TAG);
      host.setAttribute("data-shop", shop);
      // Inline !important beats any rule of the page's stylesheets on our element (even
      // `* { display: none !important }`): the host is a zero-size fixed box, inheriting nothing.
      var hostStyle = "all:initial;display:block;position:fixed;right:0;bottom:0;width:0;height:0;"
        + "margin:0;padding:0;border:0;overflow:visible;z-index:2147483000;contain:none;transform:none;"
        + "filter:none;opacity:1;visibility:visible;pointer-events:auto";
      hostStyle.split(";").forEach(function (rule) {
        var i = rule.indexOf(":");
        if (i > 0) host.style.setProperty(rule.slice(0, i), rule.slice(i + 1), "important");
      });
      var root = host.attachShadow({ mode: "open" });

      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = base + "/widget/widget.css";
      var styles = new Promise(function (resolve, reject) {
        link.addEventListener("load", resolve);
        link.addEventListener("error", reject);
      });
      root.appendChild(link);
      document.body.appendChild(host);
      entry.host = host;

      var options = {
        shop: shop,
        sku: script.getAttribute("data-product") || null,
        lang: script.getAttribute("data-lang") || null,
        name: script.getAttribute("data-name") || null,
        launcher: (script.getAttribute("data-launcher") || "").toLowerCase() !== "off",
        base: base,
        host: host,
        styles: styles,
      };
      // A dynamic import from another origin: Vitrine serves the widget modules with CORS.
      import(base + "/widget/app.js").then(function (module) {
        try {
          entry.app = module.mount(root, options);
          var queued = entry.pending.splice(0);
          queued.forEach(function (item) { entry.app[item[0]](item[1]); });
        } catch (err) {
          warn("could not mount:", err);
        }
      }, function (err) {
        warn("could not load " + base + "/widget/app.js:", err);
      });
    } catch (err) {
      warn("could not start:", err);
    }
  }

  // -- the live show player -------------------------------------------------------------------

  function startLive(script, shop, show) {
    if (!window.customElements || !HTMLElement.prototype.attachShadow) {
      warn("this browser cannot show the live player (no custom elements or shadow DOM)");
      return;
    }
    var shows = api._live || (api._live = {});
    if (shows[shop + "/" + show]) return; // the same show pasted twice: one player
    shows[shop + "/" + show] = true;
    var target = script.getAttribute("data-target");
    // Placing next to the script works while the page is still parsing; a target may come later in it.
    if (document.readyState === "loading" && (target || !document.body || !document.body.contains(script))) {
      document.addEventListener("DOMContentLoaded", function () { placeLive(script, shop, show, target); });
    } else {
      placeLive(script, shop, show, target);
    }
  }

  function placeLive(script, shop, show, target) {
    try {
      var base = new URL(script.src, document.baseURI).origin;
      if (!customElements.get(LIVE_TAG)) {
        customElements.define(LIVE_TAG, class extends HTMLElement {});
      }
      var host = document.createElement(LIVE_TAG);
      host.setAttribute("data-shop", shop);
      host.setAttribute("data-show", show);
      host.style.setProperty("display", "block", "important");
      var root = host.attachShadow({ mode: "open" });
      var link = document.createElement("link");
      link.rel = "stylesheet";
      link.href = base + "/live/player.css";
      var styles = new Promise(function (resolve, reject) {
        link.addEventListener("load", resolve);
        link.addEventListener("error", reject);
      });
      root.appendChild(link);

      var parent = null;
      if (target) {
        try {
          parent = document.querySelector(target);
        } catch (ignored) {
          /* not a selector: warned below */
        }
        if (!parent) warn("no element matches data-target " + target + "; the player goes after the script");
      }
      if (parent) parent.appendChild(host);
      else if (document.body.contains(script)) script.parentNode.insertBefore(host, script.nextSibling);
      else document.body.appendChild(host); // a script in <head>

      import(base + "/live/player.js").then(function (module) {
        try {
          module.mount(root, { base: base, shop: shop, show: show, lang: script.getAttribute("data-lang") || null,
            host: host, styles: styles, cart: true });
        } catch (err) {
          warn("could not mount the live player:", err);
        }
      }, function (err) {
        warn("could not load " + base + "/live/player.js:", err);
      });
    } catch (err) {
      warn("could not start the live player:", err);
    }
  }
})();
