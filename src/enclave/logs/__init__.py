"""Logs: redaction policy, structured JSON logging, the encrypted log store, retention."""
