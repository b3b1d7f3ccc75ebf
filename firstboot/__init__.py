"""kubeinit's node side: the `kubeinit` command run by kubeinit.service on first boot."""
