"""Tools run against a real AWS account before and after `sam deploy` (preflight checks)."""
