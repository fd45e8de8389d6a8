"""`make bench`: the project against course-style baselines (see __main__)."""
