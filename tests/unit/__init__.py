"""Unit layer: the I/O-free delivery core under a fake transport and a fake clock."""
