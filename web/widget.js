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
})();
