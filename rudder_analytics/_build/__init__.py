"""The caller's thread: validate the input, build the message, run the before_send hooks,
capture (testing) and encode it once.
"""
