"""A benchmark of rasbot's device endpoints, run by hand (see README.md)."""
