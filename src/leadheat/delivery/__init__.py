"""Getting notifications out: senders for each channel and the worker that drives them."""
