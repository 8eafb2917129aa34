"""External processes (PostgreSQL, the server, the device simulator) that tests drive."""
