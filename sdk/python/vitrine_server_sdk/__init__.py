"""Vitrine for shop backends: mint join and console tokens, call the REST API, verify webhooks.

Standalone: it needs PyJWT and httpx, never the Vitrine server package. docs/sdk.md is the guide.
"""

from vitrine_server_sdk.client import (
    AuthenticationError,
    ConflictError,
    ConsoleLogin,
    GoneError,
    InvalidRequestError,
    JoinToken,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
    Vitrine,
    VitrineAPIError,
    VitrineConnectionError,
    VitrineError,
    WebhookKey,
)
from vitrine_server_sdk.tokens import (
    CONSOLE_AUDIENCE,
    JOIN_AUDIENCE,
    ROLE_DEFAULT_GRANTS,
    ConsoleRole,
    Grants,
    Role,
    mint_console_token,
    mint_join_token,
)
from vitrine_server_sdk.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookSignatureError,
    parse_webhook,
    sign_webhook,
    verify_webhook,
)

__all__ = [
    "CONSOLE_AUDIENCE",
    "DELIVERY_HEADER",
    "JOIN_AUDIENCE",
    "ROLE_DEFAULT_GRANTS",
    "SIGNATURE_HEADER",
    "AuthenticationError",
    "ConflictError",
    "ConsoleLogin",
    "ConsoleRole",
    "GoneError",
    "Grants",
    "InvalidRequestError",
    "JoinToken",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "Role",
    "ServerError",
    "Vitrine",
    "VitrineAPIError",
    "VitrineConnectionError",
    "VitrineError",
    "WebhookKey",
    "WebhookSignatureError",
    "mint_console_token",
    "mint_join_token",
    "parse_webhook",
    "sign_webhook",
    "verify_webhook",
]
