"""The emoji corpus, the synthetic web drawn from it, and the CLIP filter over that web (chapter 2)."""
