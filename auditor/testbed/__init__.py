"""A real PostgreSQL with controller schemas and controller-shaped data, for tests, demo and bench."""
