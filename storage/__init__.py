"""Tables, the database engine and sessions, and Alembic migrations. Imports nothing above it."""
