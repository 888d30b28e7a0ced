"""Model components: SSL layer integration, SE and SER heads (each family has an abstract base)."""
