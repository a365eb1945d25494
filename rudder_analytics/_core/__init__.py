"""The I/O-free delivery core: policy and state, no sockets, threads, sleeps or clocks.

Time comes in as arguments (``now`` from a monotonic clock, ``sent_at`` as an ISO
string); I/O results come back as :class:`~rudder_analytics._core.delivery.Answer`.
The blocking driver (:mod:`rudder_analytics._sync.driver`) and the asyncio driver
(:mod:`rudder_analytics._async.driver`) run one copy of it. This package never
imports ``threading``, ``time``, ``asyncio``, ``requests`` or ``httpx``.
"""
