"""flaglens contracts."""
