"""Persistence: SQLAlchemy models, migrations and the queries that keep scores current."""
