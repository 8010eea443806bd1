"""Local fake APIs for demos, integration tests and benchmarks (``wms-relay sandbox --api ...``).

One package per API — worker.sandbox.trademax, worker.sandbox.kaching, worker.sandbox.stocktrim,
worker.sandbox.stock2shop — each layered (api → routes/state → answers) with an injected clock, each
checking credentials like its API, keeping state and answering in its API's shapes.  They share the HTTP
layer and the sandbox-only ``/_sandbox/`` endpoints (worker.sandbox.server), fault injection (latency,
500s, 429 with Retry-After, requests applied and then left unanswered past the client's read timeout:
worker.sandbox.faults), the request log (worker.sandbox.request_log) and the control client
(worker.sandbox.control).  docs/destinations.md says where each sandbox decides what its API's
documentation leaves open.

Never point production at them; never point them at production credentials.
"""
