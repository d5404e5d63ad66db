"""Load generators and benchmarks of the media server."""
