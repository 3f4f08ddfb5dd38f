"""A loaded diffusers pipeline and what runs it: loading, the sampling loop, guidance, cross-attention recording, the safety checker (chapters 1, 6-8)."""
