"""Corpus preparation and noise simulation."""
