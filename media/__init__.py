"""The aiortc media worker: one peer connection per participant, RTP forwarded, never transcoded."""
