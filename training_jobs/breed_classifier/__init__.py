"""The dog-breed classifier's model, data, training loop and artifact: one module behind every entry point.

Runs inside SageMaker's PyTorch containers (training and inference) and on any training box; it
never imports the Lambda layer or the offline stack.
"""
