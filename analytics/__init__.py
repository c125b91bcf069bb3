"""flaglens analytics."""
