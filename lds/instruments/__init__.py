"""What the chapters measure and draw, on a loaded pipeline: one module per chapter's instrument."""
