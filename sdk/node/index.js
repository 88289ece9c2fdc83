// Vitrine for shop backends: mint join and console tokens, call the REST API, verify webhooks.
// An ES module for Node 20 or newer, with no dependencies (node:crypto, global fetch). docs/sdk.md is the guide.

export {
  CONSOLE_AUDIENCE, DEFAULT_CONSOLE_TTL_S, DEFAULT_JOIN_TTL_S, GRANT_NAMES, JOIN_AUDIENCE, ROLE_DEFAULT_GRANTS,
  mintConsoleToken, mintJoinToken, signJwt,
} from "./tokens.js";
export {
  AuthenticationError, ConflictError, GoneError, InvalidRequestError, NotFoundError, PermissionDeniedError,
  RateLimitedError, ServerError, Vitrine, VitrineAPIError, VitrineConnectionError, VitrineError,
} from "./client.js";
export {
  DEFAULT_TOLERANCE_S, DELIVERY_HEADER, SIGNATURE_HEADER, WebhookSignatureError, parseWebhook, signWebhook,
  verifyWebhook,
} from "./webhooks.js";
