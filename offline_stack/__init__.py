"""The offline stack: runs the SAM application's pieces on one machine, on loopback only.

Nothing in functions/, layers/ or training_jobs/ imports this package; it imports them the way
Lambda and SageMaker would (see docs/offline-stack.md, "What the demo runs, and what is real").
"""
