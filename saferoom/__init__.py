"""SafeRoom, the service: HTTP API, settings, CLI, encrypted storage, auth and orchestration."""
