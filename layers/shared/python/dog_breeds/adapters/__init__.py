"""The only modules that talk to AWS (botocore): each turns AWS errors into the project's own errors."""
