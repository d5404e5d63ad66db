"""Audio plumbing shared by every route: constants, resampling, containers."""
