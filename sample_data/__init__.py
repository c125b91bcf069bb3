"""flaglens sample_data."""
