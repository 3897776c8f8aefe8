"""End-to-end tests: ``entrypoint.py`` as a subprocess with the runner's environment, against fakes; the container."""
