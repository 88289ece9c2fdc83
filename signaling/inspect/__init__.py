"""After-sales inspection on the server: cases and their one-time links."""
