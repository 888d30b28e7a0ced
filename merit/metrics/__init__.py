"""SER and SE metrics."""
