"""A local fake Trademax for demos, integration tests and benchmarks (``wms-relay sandbox``).

It verifies signatures and timestamps like Trademax (worker.sandbox.trademax.auth), keeps state — dispatches,
receipts, stock, package data, order-line locks (worker.sandbox.trademax.state) — answers in the API
document's
shapes and error codes, answers 452 to a repeated transaction_id, and injects faults on demand: latency,
500s, 429 with Retry-After, and requests applied and then left unanswered past the client's read timeout
(worker.sandbox.faults).  worker.sandbox.trademax.server is the HTTP layer and documents the sandbox-only
``/_sandbox/`` endpoints (state, requests, faults, reset).

Never point production at it; never point it at production keys.
"""
