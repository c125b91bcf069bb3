"""Reports built from the analytics: the weekly metrics report."""
