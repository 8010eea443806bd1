"""Flow control per destination: how fast, whether at all, and how many at once requests leave for each
destination (docs/flow-control.md).

- ``policy``: what an answer means for the flow (pure);
- ``rate_limit``: the shared rate limit (GCRA in Lua), and the hold a 429/503's Retry-After puts on it;
- ``circuit``: the circuit breaker (closed → open → half-open probe → closed);
- ``pause``: pause and resume by a person, audited;
- ``gate``: the one question before every send (pause → circuit → rate limit), one round trip;
- ``parking``: deliveries parked while a destination is paused or open, and their gradual release;
- ``batches``: pending stock counts of a bulk destination, coalesced, and the batch in flight;
- ``split``: a batch refused for its content, split in halves to find the bad item(s) (pure);
- ``controls``: the bundle one process uses (a gate, parking and batches per destination).

Each store module opens with its Redis key layout and its Lua scripts (KEYS/ARGV).  Times come from the
injected clock.  What sends and records (the ledger, dead letters) lives in worker.delivery.
"""
