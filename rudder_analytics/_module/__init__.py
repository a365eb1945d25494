"""The module facade: module-level calls on a default client, the module-level settings
(derived from Config), and the Client attributes peer SDKs expose.
"""
