"""Accounting and reporting: outcomes become stats, one log line per cause, and
on_drop/on_error callbacks on their own thread.
"""
