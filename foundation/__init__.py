"""The foundation: settings, secrets, the Redis client, events, metrics primitives, logging and safe XML.

It imports nothing of wio above it (see the layers contract in pyproject.toml)."""
