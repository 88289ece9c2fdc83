/**
 * api.js: the buyer's inspection calls (signaling/routes/inspect.py), through web/vitrine-api.js.
 */

import { requestJson } from "../vitrine-api.js";

/** The buyer's calls: spend the link once, then everything with the session token. */
export class BuyerApi {
  constructor() {
    this.token = null; // the buyer's session token (from redeem, or sessionStorage after a reload)
  }

  /** Spend a one-time link: {case_id, shop_name, order_ref, language, token}. */
  redeem(linkToken) {
    return requestJson("POST", "/v1/inspect/redeem", { body: { token: linkToken } });
  }

  /** {case_id, shop_name, order_ref, language, consent_text, consent_version, retention_days, consented, state}. */
  session() {
    return requestJson("GET", "/v1/inspect/session", { token: this.token });
  }

  /** Agree to the consent text of `version`: {consented_at_ms}. */
  consent(version) {
    return requestJson("POST", "/v1/inspect/session/consent", { token: this.token, body: { version } });
  }

  /** A fresh /v1/rtc join token (role buyer; it knocks until the inspector admits the case). */
  async join() {
    return (await requestJson("POST", "/v1/inspect/session/join", { token: this.token })).token;
  }
}
