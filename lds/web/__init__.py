"""The book's live pages: lds-mini exported to ONNX and run in the reader's browser ("Run it in your browser")."""
