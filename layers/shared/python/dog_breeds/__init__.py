"""Code shared by the project's Lambda functions: settings, errors, payload codecs, logic, adapters.

Only ``dog_breeds.adapters`` talks to AWS; everything else is plain Python that tests can call.
"""
