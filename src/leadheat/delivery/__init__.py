"""Getting notifications out: the outbox, senders for each channel and the worker that drives
them."""
