"""The operator console: static HTML, JS and CSS served by the admin server at /console/ (package data)."""
