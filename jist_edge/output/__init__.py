"""Where results go: JSON lines, the status line, the window and the live web view."""
