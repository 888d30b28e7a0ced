"""ESPnet task definitions."""
