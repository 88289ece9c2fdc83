"""Live selling: shows, their log entries and their numbers."""
