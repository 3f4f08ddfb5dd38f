"""The book's machinery, apart from the model it studies.

``runner`` executes the chapters (papermill) and builds the book; ``rerun`` is ``lds rerun``;
``record`` glues a chapter's numbers and claims into its executed copy; ``receipt`` states what a run
used; ``claims`` gathers the ledger from the executed chapters; ``dials`` are the precomputed sliders.
Nothing here is imported by the model's components (``lds.pipeline.sampling``, ``lds.models.unet`` ...).
"""
