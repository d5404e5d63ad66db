"""HTTP routes: thin adapters over the engine client."""
