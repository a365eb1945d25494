"""Small programs that tests/test_signals.py runs in real subprocesses (a script, servers)."""
