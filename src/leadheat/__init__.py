"""leadheat: which leads are hot right now, and why."""

__version__ = "0.1.0"
