"""One typed settings object, read from the environment (``LEADHEAT_*``) by whoever starts
leadheat; nothing reads the environment at import time."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from leadheat.store.database import DEFAULT_URL


class Settings(BaseSettings):
    """``LEADHEAT_DATABASE_URL``: any SQLAlchemy URL (default ``sqlite:///leadheat.db``)."""

    model_config = SettingsConfigDict(env_prefix="LEADHEAT_")

    database_url: str = DEFAULT_URL
