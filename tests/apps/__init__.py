"""Small programs, and project sources, that the tests run in real subprocesses (a script,
servers, Django projects)."""
