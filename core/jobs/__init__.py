"""Background jobs on huey (Redis in production, SQLite embedded): tasks, schedules, maintenance."""
