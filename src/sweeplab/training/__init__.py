"""The training core: data in memory, the model, optimizer and schedule, the one epoch driver and its callbacks."""
