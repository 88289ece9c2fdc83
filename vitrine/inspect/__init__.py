"""After-sales video inspection: cases, their one-time links, and (later) their evidence."""
