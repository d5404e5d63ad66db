"""Text preparation: incremental segmentation of streamed text."""
