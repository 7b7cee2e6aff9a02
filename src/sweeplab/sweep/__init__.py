"""What the sweepers and launchers share: composing a sweep's configs once, the launcher protocol, one sweep
per dir."""
