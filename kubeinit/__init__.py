"""kubeinit core: configuration, the version table, and the renderers shared by build time and
first boot. Modules here import nothing heavy at import time, so `kubeinit --help` stays fast."""

__version__ = "0.1.0"
