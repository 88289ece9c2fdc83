"""The browser suites: headless Debian Chromium through Playwright, against a real server."""
