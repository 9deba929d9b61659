"""Customer files: what type a file is, what is inside a ZIP, and the preflight of print data."""
