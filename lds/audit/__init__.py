"""Audits at scale (chapter 12, ``lds audit``): typed specs, resumable shards, the report."""
