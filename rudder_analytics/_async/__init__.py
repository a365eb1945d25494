"""The asyncio path: an ``httpx.AsyncClient`` transport, the async driver and the
client's ``aflush``/``ashutdown``/``asend`` (``httpx`` is the optional ``async`` extra)."""
