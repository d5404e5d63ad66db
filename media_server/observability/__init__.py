"""Observability: Prometheus metrics, structured JSON logs and the per-utterance latency breakdown."""
