"""Who may call leadheat: API keys (``store/`` keeps their table)."""
