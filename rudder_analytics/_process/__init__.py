"""Process life: exit and fork hooks, the opt-in SIGTERM handler, and the once-only shutdown."""
