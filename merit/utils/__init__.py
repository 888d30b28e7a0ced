"""Small helpers shared by merit's tools."""
