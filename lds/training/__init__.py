"""The recipe that trains lds-mini stage by stage (``lds train``), and the model card's evaluation."""
