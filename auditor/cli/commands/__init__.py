"""Command modules: each defines ``register(cli)`` that adds its commands to the group."""
