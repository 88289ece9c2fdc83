"""Live selling on the server: shows, and what happens in their rooms."""
