"""The FastAPI signaling server: REST API, WebSocket signaling, WHIP and WHEP."""
