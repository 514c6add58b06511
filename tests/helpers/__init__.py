"""Helpers shared by the tests, by topic: cli, files, images, networks, training.

Plain modules, not conftest files: a conftest's functions cannot be imported by name (every
conftest.py is a module called `conftest`), and spawned test processes must import these too.
`from helpers.training import ...` works because pytest's default 'prepend' import mode puts the
folder of tests/conftest.py (a folder without __init__.py) first on sys.path, for a whole run and
for a single file alike; worker processes that multiprocessing spawns inherit that sys.path.
Fixtures stay in the conftest.py files; their bodies call these helpers.
"""
