"""kubeinit-build: pre-render version-pinned artifacts into an OS image at build time."""
