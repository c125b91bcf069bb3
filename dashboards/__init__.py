"""flaglens dashboards."""
