"""The training loop and its helpers (batching, exact evaluation)."""
