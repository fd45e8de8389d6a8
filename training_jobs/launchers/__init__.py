"""Launchers on the SageMaker Python SDK 2.x: train, tune, deploy the best job, upload data and code.

Run from training_jobs/ (``python -m launchers.start_training_job ...``). They are not part of the training code
uploaded to SageMaker (``launchers.package_source`` leaves this folder out).
SDK 3.x removed the PyTorch estimator, Debugger rules and the tuner, so these pin SDK 2.x.
"""
