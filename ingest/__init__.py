"""flaglens ingest."""
