"""The blocking driver of the delivery core, on ``requests`` (workers, sync mode, batches)."""
