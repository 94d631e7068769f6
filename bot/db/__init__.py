"""The owner database: SQLAlchemy 1.4 models with the 2.0-style API, one session per unit of work."""
