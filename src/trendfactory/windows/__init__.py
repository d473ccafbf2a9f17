"""The window store: its writer, its reader and per-fold views, and the torch batch gatherer."""
