"""``make reliability``: hostile input, nasty images, faults and load against the offline stack, as figures.

Each part has a budget (``FULL`` for ``make reliability``, ``SMALL`` for the tests in ``make test``);
``python -m reliability`` runs every part, prints one table and writes it as JSON.
"""
