"""The live view in a browser: the HTTP server, the feed of results, the page."""
