"""The networks lds-mini is made of, each with its training loop (chapters 2-5)."""
