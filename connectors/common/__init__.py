"""What the native venue connectors share: credentials, REST with rate limits, a reconnecting
WebSocket, event deduplication and reconciliation after a reconnect, and the emulator core."""
