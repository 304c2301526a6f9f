# The Redis fixtures of tests/services.py ("x as x": imported for pytest, not unused).
from tests.services import namespace as namespace
from tests.services import redis_url as redis_url
