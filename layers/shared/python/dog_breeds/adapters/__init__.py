"""The only modules that import boto3: each turns AWS errors into the project's own errors."""
