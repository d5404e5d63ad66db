"""Ray mode (`MODE=ray`): engine cores as Ray Serve replicas across hosts, gateways that own the peers.

A gateway (`media-server serve` with `MODE=ray`) serves every route and
transport exactly as standalone mode does, over a `RayCore`: it holds a handle
of the engine deployment and never loads a model. Each replica runs one
`LocalCore` (scheduler, backend, cache). With no `RAY_ADDRESS` the gateway
starts a one-machine cluster on loopback itself; with one it joins that
cluster, and deploys the engine unless it already runs there.

- `calls`: what one streaming call carries, and the items it streams back.
- `replica`: `EngineReplica`, the Serve deployment class.
- `board`: the actor replicas post their figures and cloned voices to.
- `cluster`: the engine application, and joining or starting a cluster.
- `core`: `RayCore` and its `RayStream` (failover, cancellation).
"""

import os

# Ray reads this when it is first imported, so before any module of this package imports it: Ray's failure
# signal handler would turn the SIGTERM that shuts a gateway down gracefully into an abort.
os.environ["RAY_DISABLE_FAILURE_SIGNAL_HANDLER"] = "1"
