"""The REST API suites: the HTTP contract shop backends call."""
